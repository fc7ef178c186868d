import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isLogLevel, levelEnabled, parseLogLevel } from '../../src/logging/level.js';

test('parseLogLevel: the original switches, level names, defaults', () => {
  assert.equal(parseLogLevel('true'), 'debug');
  assert.equal(parseLogLevel('TRUE'), 'debug');
  assert.equal(parseLogLevel('false'), 'error');
  assert.equal(parseLogLevel('False'), 'error');
  assert.equal(parseLogLevel('debug'), 'debug');
  assert.equal(parseLogLevel('INFO'), 'info');
  assert.equal(parseLogLevel(' Warn '), 'warn');
  assert.equal(parseLogLevel('error'), 'error');
  assert.equal(parseLogLevel(undefined), 'info');
  assert.equal(parseLogLevel(''), 'info');
  assert.equal(parseLogLevel('verbose'), 'info');
});

test('levelEnabled: the threshold and everything above it', () => {
  assert.equal(levelEnabled('info', 'debug'), false);
  assert.equal(levelEnabled('info', 'info'), true);
  assert.equal(levelEnabled('info', 'error'), true);
  assert.equal(levelEnabled('error', 'warn'), false);
  assert.equal(levelEnabled('debug', 'debug'), true);
  assert.equal(isLogLevel('warn'), true);
  assert.equal(isLogLevel('WARN'), false);
  assert.equal(isLogLevel(undefined), false);
});
