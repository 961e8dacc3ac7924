/**
 * What TypeScript sees of `require('aistock')` (and `aistock/machines`, `aistock/testing`) from
 * a CommonJS module: nothing, because it throws `ERR_REQUIRE_ESM` (cjs/require.cjs). aistock is
 * an ES module: `import { createTradingSession } from 'aistock'`, or `import('aistock')` from CommonJS.
 */
export {};
