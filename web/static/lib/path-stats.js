// Which way a data channel's packets go, from RTCPeerConnection.getStats():
// the selected candidate pair's type and its current round-trip time.
// Mirrors peer/path_stats.py: `candidate` is the local candidate's type,
// except "relay" when either end is a TURN relay.

const CANDIDATE_TYPES = ["host", "srflx", "prflx", "relay"];

/** The `candidate` field from the two ends' candidate types (pure). */
export function pairCandidate(localType, remoteType) {
  if (localType === "relay" || remoteType === "relay") return "relay";
  return CANDIDATE_TYPES.includes(localType) ? localType : null;
}

/** {candidate, rttMs} of an RTCStatsReport (a Map of stats by id); null where unknown. */
export function pathFromStats(report) {
  let pair = null;
  for (const stats of report.values()) {
    if (stats.type === "transport" && stats.selectedCandidatePairId) {
      pair = report.get(stats.selectedCandidatePairId) ?? null;
      break;
    }
  }
  if (!pair) {
    for (const stats of report.values()) {
      if (stats.type === "candidate-pair" && stats.nominated && stats.state === "succeeded") {
        pair = stats;
        break;
      }
    }
  }
  if (!pair) return { candidate: null, rttMs: null };
  const local = report.get(pair.localCandidateId)?.candidateType ?? null;
  const remote = report.get(pair.remoteCandidateId)?.candidateType ?? null;
  const rtt = pair.currentRoundTripTime;
  return { candidate: pairCandidate(local, remote), rttMs: typeof rtt === "number" ? rtt * 1000 : null };
}
