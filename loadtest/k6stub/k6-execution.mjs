// Stand-in for k6/execution: one VU.
export default {
  vu: { idInTest: 1, idInInstance: 1, iterationInScenario: 0 },
  scenario: { name: 'check', iterationInTest: 0 },
  test: { abort(msg) { throw new Error(`test.abort: ${msg}`); } },
};
