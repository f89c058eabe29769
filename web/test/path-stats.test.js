import assert from "node:assert/strict";
import { test } from "node:test";
import { pairCandidate, pathFromStats } from "../static/lib/path-stats.js";

test("candidate of a pair, as peer/path_stats.py", () => {
  const cases = [
    ["host", "host", "host"], ["host", "prflx", "host"], ["srflx", "host", "srflx"],
    ["prflx", "srflx", "prflx"], ["host", "relay", "relay"], ["relay", "host", "relay"],
    [null, "host", null], ["bogus", "host", null],
  ];
  for (const [local, remote, expected] of cases) assert.equal(pairCandidate(local, remote), expected);
});

test("the transport's selected pair wins; rtt in ms", () => {
  const report = new Map([
    ["T", { type: "transport", selectedCandidatePairId: "P2" }],
    ["P1", { type: "candidate-pair", nominated: true, state: "succeeded", localCandidateId: "L1", remoteCandidateId: "R1", currentRoundTripTime: 0.5 }],
    ["P2", { type: "candidate-pair", nominated: true, state: "succeeded", localCandidateId: "L2", remoteCandidateId: "R1", currentRoundTripTime: 0.012 }],
    ["L1", { type: "local-candidate", candidateType: "host" }],
    ["L2", { type: "local-candidate", candidateType: "srflx" }],
    ["R1", { type: "remote-candidate", candidateType: "host" }],
  ]);
  assert.deepEqual(pathFromStats(report), { candidate: "srflx", rttMs: 12 });
  report.delete("T");
  assert.deepEqual(pathFromStats(report), { candidate: "host", rttMs: 500 });
  assert.deepEqual(pathFromStats(new Map()), { candidate: null, rttMs: null });
});
