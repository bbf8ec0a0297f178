// Package rollout is the control plane's rollout controller: it moves a
// route from its policy set to a candidate set stage by stage — shadow
// (the candidate evaluated beside the current set), canary (the candidate
// enforced for a share of callers), enforce — as the mesh file declares
// and operators command, and by itself under the rollout's gates.
//
// The gates are judged on the authorizers' own counts: every authorizer
// counts, per rollout step (the meshguard.rollout context extension), how
// the candidate decided each request compared with the current set, and
// serves the counts on its admin /v1/rollouts. The controller sums them
// over every authorizer, judges each step (Judge, a pure function),
// promotes, rolls back or pauses, and records every transition, with the
// counts that justified it, in its state (state.json, reloaded on start)
// and in an append-only audit file (audit.jsonl).
//
// Data flows one way: the controller's position of each rollout is laid
// over the mesh (Overlay) and the translator turns it into context
// extensions; the controller never builds Envoy configuration itself.
package rollout
