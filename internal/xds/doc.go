// Package xds serves Envoy configuration over ADS (state-of-the-world and
// incremental), with go-control-plane's protocol servers and meshguard's own
// cache: the control plane serves every proxy's configuration with it, and
// identity/sds a workload's own secrets.
//
// The cache is meshguard's, not go-control-plane's SnapshotCache, for three
// reasons measured or found in go-control-plane v0.14.0 (docs/controlplane.md):
//
//   - after a NACK, SnapshotCache resends the rejected config in a tight loop;
//     this cache remembers the version a node rejected and waits for a new one;
//   - with ads=true, a snapshot holding resources a client did not request
//     drops that type's watch for good; this cache answers with what was
//     requested and keeps watching;
//   - SnapshotCache marshals every resource for every node on every push and
//     versions all types together; here each resource is marshaled once,
//     identical resource sets are shared between nodes, and each type is
//     versioned by its content, so only changed types are sent.
package xds
