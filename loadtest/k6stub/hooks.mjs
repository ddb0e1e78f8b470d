// Module resolution hooks for loadtest/check.js: the k6 built-in modules
// resolve to the stand-ins in this directory.
const stubs = {
  k6: 'k6.mjs',
  'k6/http': 'k6-http.mjs',
  'k6/metrics': 'k6-metrics.mjs',
  'k6/execution': 'k6-execution.mjs',
};

export async function resolve(specifier, context, next) {
  if (Object.hasOwn(stubs, specifier)) {
    return { url: new URL(stubs[specifier], import.meta.url).href, shortCircuit: true };
  }
  if (specifier.startsWith('k6/') || specifier.startsWith('https://')) {
    throw new Error(`loadtest check: no stand-in for ${specifier}; add one in loadtest/k6stub or avoid it`);
  }
  return next(specifier, context);
}
