// Package contract holds the names the parts of meshguard agree on: the
// per-route context extensions the control plane sets and the authorizer
// reads, the route modes and rollout stages, the policy set name grammar,
// the SDS secret names sidecars ask for, and the wasm filter kinds.
//
// A name here is a wire contract between processes that may run different
// versions: add names, never change one. The control plane (model,
// translate), the authorizer (extauthz) and identity all import this
// package instead of spelling the strings themselves.
package contract

import (
	"strconv"
	"strings"
)

// Context extension keys (ExtAuthzPerRoute.check_settings.context_extensions).
// The control plane sets ExtService and the route's default ExtPolicy on
// the virtual host and the rest per route; Envoy merges them, the more
// specific key winning.
const (
	// ExtRoute is the route id, unique in the mesh (e.g. "orders/read").
	ExtRoute = "meshguard.route"
	// ExtService is the destination service: the Cedar resource. The
	// authorizer denies a request without it.
	ExtService = "meshguard.service"
	// ExtPolicy is the route's current policy set.
	ExtPolicy = "meshguard.policy"
	// ExtMode is ModeEnforce or ModeShadow.
	ExtMode = "meshguard.mode"
	// ExtShadow names a candidate set evaluated beside the enforced one
	// and never enforced (a plain comparison, outside any rollout).
	ExtShadow = "meshguard.shadow"
	// ExtAction names the Cedar action instead of the HTTP method.
	ExtAction = "meshguard.action"

	// ExtCandidate is the candidate set of a rollout on the route.
	ExtCandidate = "meshguard.candidate"
	// ExtStage is the rollout stage, StageShadow or StageCanary (a
	// rollout at StageEnforce is carried as its candidate in ExtPolicy).
	ExtStage = "meshguard.stage"
	// ExtCanary is the share of requests, in percent (0-100, at most two
	// decimals), for which the candidate is enforced at StageCanary.
	ExtCanary = "meshguard.canary"
	// ExtRollout identifies the rollout step (stage and percentage) that
	// produced the route's settings; the authorizer keeps its rollout
	// counts per value, so a controller reads the counts of exactly the
	// step it judges.
	ExtRollout = "meshguard.rollout"
)

// Extensions lists every context extension key.
var Extensions = []string{
	ExtRoute, ExtService, ExtPolicy, ExtMode, ExtShadow, ExtAction,
	ExtCandidate, ExtStage, ExtCanary, ExtRollout,
}

// HeaderPrefix starts every header meshguard sets on a request. The
// sidecar removes client-supplied ones before any filter reads them.
const HeaderPrefix = "x-meshguard-"

// Header is the request header carrying extension key in Envoy's HTTP
// ext_authz service mode, which has no context extensions:
// "meshguard.route" travels as "x-meshguard-route".
func Header(key string) string {
	return "x-" + strings.ReplaceAll(key, ".", "-")
}

// Route modes (ExtMode).
const (
	ModeEnforce = "enforce"
	ModeShadow  = "shadow" // evaluate, record what enforcement would do, allow
)

// Rollout stages.
const (
	// StageShadow evaluates the candidate beside the current set and
	// enforces the current set.
	StageShadow = "shadow"
	// StageCanary enforces the candidate for a share of callers, chosen
	// by a hash of principal and route, and the current set for the rest.
	StageCanary = "canary"
	// StageEnforce makes the candidate the route's set.
	StageEnforce = "enforce"
)

// DefaultSet is the policy set of the *.cedar files at the root of a
// policy directory, and of routes that name none.
const DefaultSet = "default"

// ValidSetName reports whether name can name a policy set: 1 to 128 ASCII
// letters, digits, '.', '_' or '-', starting with a letter or digit. The
// authorizer checks it on every request (the route's set), so it is a loop,
// not a regexp.
func ValidSetName(name string) bool {
	if len(name) == 0 || len(name) > 128 {
		return false
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// SDS secret names, as SPIRE's agent serves them, so a sidecar can point
// at the SPIRE agent or at meshguard without other changes.
const (
	SecretSVID   = "default" // the workload's own X.509-SVID and key
	SecretBundle = "ROOTCA"  // its trust domain's bundle
	SecretAll    = "ALL"     // its own and every federated bundle
)

// FilterKinds are the proxy-wasm filters meshguard ships, in the order
// they run in a sidecar's inbound chain (before ext_authz: validate,
// headers; after it: ratelimit).
var FilterKinds = []string{"validate", "headers", "ratelimit"}

// CanaryBuckets is the number of canary buckets: a percentage with two
// decimals selects a whole number of them.
const CanaryBuckets = 10000

// CanaryBucket places a caller of a route in one of CanaryBuckets buckets;
// at StageCanary with a share of p basis points, the candidate is enforced
// for the callers whose bucket is below p. principal is the Cedar principal
// as the authorizer writes it (User::"alice"). The bucket is a pure
// function of route and principal: every authorizer replica, and every
// restart, gives a caller the same answer, and raising the share only adds
// callers to the candidate's side.
//
// It is 64-bit FNV-1a over route, a zero byte and principal, finished by
// SplitMix64's mixer (FNV's low bits alone are poorly spread for keys that
// differ in their last bytes), modulo CanaryBuckets.
func CanaryBucket(route, principal string) int {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(route); i++ {
		h = (h ^ uint64(route[i])) * prime
	}
	h *= prime // the zero byte: h ^ 0 == h
	for i := 0; i < len(principal); i++ {
		h = (h ^ uint64(principal[i])) * prime
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return int(h % CanaryBuckets)
}

// ParsePercent reads a percentage from 0 to 100 with at most two decimals
// ("10", "2.5", "0.25") as basis points. It is read for every request of a
// canary route, so it does not go through strconv's float parsing (which
// would also accept "1e1", "NaN" and rounding).
func ParsePercent(s string) (int, bool) {
	whole, frac := s, ""
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			whole, frac = s[:i], s[i+1:]
			if frac == "" {
				return 0, false
			}
			break
		}
	}
	if whole == "" || len(whole) > 3 || len(frac) > 2 {
		return 0, false
	}
	n := 0
	for _, part := range []string{whole, frac} {
		for i := 0; i < len(part); i++ {
			c := part[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
	}
	for range 2 - len(frac) {
		n *= 10
	}
	return n, n <= 10000
}

// FormatPercent writes basis points as ParsePercent reads them.
func FormatPercent(bp int) string {
	// strconv, not fmt: the authorizer formats a canary share per logged
	// request, and Itoa of a number under 100 does not allocate.
	whole, frac := strconv.Itoa(bp/100), bp%100
	switch {
	case frac == 0:
		return whole
	case frac%10 == 0:
		return whole + "." + string(rune('0'+frac/10))
	}
	return whole + "." + string([]byte{byte('0' + frac/10), byte('0' + frac%10)})
}

// Rate-limit descriptor parts a route's rateLimits name; each becomes one
// descriptor entry with this key. A rate-limit service's configuration
// (envoyproxy/ratelimit's format) matches these keys.
const (
	// RateLimitRoute is the route id (generic key).
	RateLimitRoute = "route"
	// RateLimitService is the destination service (generic key).
	RateLimitService = "service"
	// RateLimitPrincipal is the Cedar principal the authorizer decided
	// for (its x-meshguard-principal header): User::"alice",
	// Workload::"spiffe://…" or Anonymous::"anonymous".
	RateLimitPrincipal = "principal"
	// RateLimitCaller is the calling workload's SPIFFE ID (the peer
	// certificate's URI SAN).
	RateLimitCaller = "caller"
	// RateLimitPath is the request path.
	RateLimitPath = "path"
	// RateLimitRemoteAddress is the client's address.
	RateLimitRemoteAddress = "remote_address"
)

// RateLimitParts lists every descriptor part, in documentation order.
var RateLimitParts = []string{RateLimitRoute, RateLimitService, RateLimitPrincipal, RateLimitCaller, RateLimitPath, RateLimitRemoteAddress}
