// Lint rules. The purity rule is the one that matters most: the Raft core and the HA decision
// logic must stay deterministic, so they may not import I/O modules (STYLE.md, "For this project").
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const ioModules = ['node:*', 'fs', 'net', 'http', 'level', 'classic-level', 'undici', 'pg', 'fastify', 'pino'];

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', 'data/**', 'scratch/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', setImmediate: 'readonly', Buffer: 'readonly', URL: 'readonly', performance: 'readonly', queueMicrotask: 'readonly', TextEncoder: 'readonly', TextDecoder: 'readonly', AbortController: 'readonly', AbortSignal: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    // The pure cores: no clock, timers, randomness, disk or sockets.
    files: ['src/raft/core/**/*.ts', 'src/raft/kv/**/*.ts', 'src/ha/decide.ts', 'src/ha/decide/**/*.ts'],
    ignores: ['**/*.test.ts', '**/test-*.ts'], // tests and their helpers may use node:assert
    rules: {
      'no-restricted-imports': ['error', { patterns: ioModules }],
      'no-restricted-globals': ['error', 'setTimeout', 'setInterval', 'setImmediate', 'performance', 'process', 'Date'],
      'no-restricted-properties': ['error', { object: 'Math', property: 'random', message: 'inject randomness' }, { object: 'Date', property: 'now', message: 'inject time' }],
    },
  },
);
