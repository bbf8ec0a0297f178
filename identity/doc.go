// Package identity gives meshguard's processes and workloads their SPIFFE
// identities: one interface (Source) over SVID and bundle sources — the
// SPIFFE Workload API (SPIRE) through go-spiffe, files written by
// `meshguard identity issue`, or the embedded dev CA — and mTLS
// configurations that validate peers strictly (package svid).
package identity
