// Stand-in for k6's "k6" module: check() records every result so
// loadtest/check.js can assert on them.
export const results = [];

export function check(value, sets, tags) {
  let ok = true;
  for (const [name, fn] of Object.entries(sets)) {
    let pass;
    try {
      pass = !!fn(value);
    } catch (e) {
      pass = false;
    }
    results.push({ name, pass, tags });
    ok = ok && pass;
  }
  return ok;
}

export function group(name, fn) {
  return fn();
}

export function sleep() {}

export function fail(msg) {
  throw new Error(msg);
}

export default { check, group, sleep, fail };
