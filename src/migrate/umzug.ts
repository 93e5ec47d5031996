// umzug is CommonJS. Imported dynamically through this ES module, a bundler's
// chunk for it exposes `Umzug` as a named export (a bare `import('umzug')` of a
// bundled CommonJS module yields only `default`). Loaded only when a migration
// is pending: umzug brings its CLI dependencies with it (~50 ms).
export { Umzug } from 'umzug'
