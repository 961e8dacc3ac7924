'use strict';
// What `require('aistock')` (and `aistock/machines`, `aistock/testing`) loads: aistock is an ES
// module only, so a CommonJS caller is told how to load it instead of failing on its syntax.
const error = new Error(
  "aistock is an ES module and cannot be loaded with require(): use `import { createTradingSession } from 'aistock'`, " +
    "or from a CommonJS module `import('aistock')`, which returns a promise of it",
);
error.code = 'ERR_REQUIRE_ESM';
throw error;
