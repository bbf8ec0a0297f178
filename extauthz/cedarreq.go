package extauthz

import (
	"net/netip"
	"strings"
	"sync"

	"github.com/cedar-policy/cedar-go"
	"github.com/cedar-policy/cedar-go/types"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/meshguard/meshguard/extauthz/jwt"
	"github.com/meshguard/meshguard/extauthz/policy"
	"github.com/meshguard/meshguard/internal/memo"
)

// Entity types of the request model (docs/policy-model.md).
const (
	TypeUser      = cedar.EntityType("User")
	TypeRole      = cedar.EntityType("Role")
	TypeWorkload  = cedar.EntityType("Workload")
	TypeAnonymous = cedar.EntityType("Anonymous")
	TypeAction    = cedar.EntityType("Action")
	TypeService   = cedar.EntityType("Service")
)

// AnonymousUID is the principal of a request with neither a verified token
// nor a workload identity.
var AnonymousUID = cedar.NewEntityUID(TypeAnonymous, "anonymous")

// Caller is who made a request, as far as it could be verified.
type Caller struct {
	// User is the verified end-user token, if any.
	User *jwt.Identity
	// Workload is the calling workload's SPIFFE ID: from a verified JWT-SVID,
	// else from the mTLS peer certificate.
	Workload spiffeid.ID
	// Peer is the mTLS peer's SPIFFE ID (context.source), whatever the principal.
	Peer spiffeid.ID
}

// Principal is User, else Workload, else Anonymous.
func (c Caller) Principal() cedar.EntityUID {
	switch {
	case c.User != nil:
		return c.User.Entity.UID
	case !c.Workload.IsZero():
		return cedar.NewEntityUID(TypeWorkload, cedar.String(c.Workload.String()))
	default:
		return AnonymousUID
	}
}

// principalEntity is the per-request entity served through the overlay.
// It is shared and must not be modified.
func (c Caller) principalEntity() *cedar.Entity {
	switch {
	case c.User != nil:
		e := c.User.Entity
		return &e
	case !c.Workload.IsZero():
		return workloadEntities.GetOrBuild(c.Workload, func() *cedar.Entity {
			e := WorkloadEntity(c.Workload)
			return &e
		})
	}
	return nil
}

// WorkloadEntity describes a SPIFFE ID. IDs of the Kubernetes form
// /ns/<namespace>/sa/<service-account> also get namespace and
// service_account attributes.
func WorkloadEntity(id spiffeid.ID) cedar.Entity {
	attrs := cedar.RecordMap{
		"trust_domain": cedar.String(id.TrustDomain().Name()),
		"path":         cedar.String(id.Path()),
	}
	if ns, sa, ok := k8sPath(id.Path()); ok {
		attrs["namespace"] = cedar.String(ns)
		attrs["service_account"] = cedar.String(sa)
	}
	return cedar.Entity{
		UID:        cedar.NewEntityUID(TypeWorkload, cedar.String(id.String())),
		Attributes: cedar.NewRecord(attrs),
	}
}

func k8sPath(p string) (ns, sa string, ok bool) {
	parts := strings.Split(p, "/")
	if len(parts) == 5 && parts[0] == "" && parts[1] == "ns" && parts[3] == "sa" {
		return parts[2], parts[4], true
	}
	return "", "", false
}

// ActionUID is Action::"<method>" unless the route names an action.
func ActionUID(a Attributes, r Route) cedar.EntityUID {
	if r.Action != "" {
		return cedar.NewEntityUID(TypeAction, cedar.String(r.Action))
	}
	return cedar.NewEntityUID(TypeAction, cedar.String(a.Method))
}

// BuildRequest assembles the Cedar request. It is a pure function of its
// inputs; headers lists the request headers exposed to policies. The
// context holds what the policies to evaluate observe (uses, from
// policy.Set.ContextUses), or all of it when uses is policy.AllUses:
// attributes no policy names cannot change a decision, and each record
// costs cedar-go a copy, a sort and a hash.
func BuildRequest(a Attributes, r Route, c Caller, headers []string, uses *policy.Uses) cedar.Request {
	return cedar.Request{
		Principal: c.Principal(),
		Action:    ActionUID(a, r),
		Resource:  cedar.NewEntityUID(TypeService, cedar.String(r.Service)),
		Context:   buildContext(a, r, c, headers, uses),
	}
}

// emptyRecord is shared: records are immutable, and building one costs
// a sort, a hash and a map copy.
var emptyRecord = cedar.NewRecord(nil)

func buildContext(a Attributes, r Route, c Caller, headers []string, uses *policy.Uses) cedar.Record {
	if uses.None() {
		return emptyRecord
	}
	return newRecord(func(m cedar.RecordMap) {
		if ru := uses.Sub("request"); ru != nil {
			m["request"] = requestRecord(a, headers, ru)
		}
		if uses.Sub("source") != nil {
			m["source"] = sourceRecords.GetOrBuild(sourceKey{a.SourceAddress, c.Peer}, func() cedar.Record { return sourceRecord(a.SourceAddress, c.Peer) })
		}
		if uses.Sub("route") != nil {
			m["route"] = routeRecords.GetOrBuild(r, func() cedar.Record { return routeRecord(r) })
		}
		if c.User != nil && uses.Sub("jwt") != nil {
			m["jwt"] = c.User.Claims
		}
	})
}

// requestRecord is context.request, with the attributes uses names.
func requestRecord(a Attributes, headers []string, uses *policy.Uses) cedar.Record {
	return newRecord(func(m cedar.RecordMap) {
		set := func(k, v string) {
			if uses.Sub(k) != nil {
				m[cedar.String(k)] = cedar.String(v)
			}
		}
		set("method", a.Method)
		set("path", a.Path)
		set("query", a.Query)
		set("host", a.Host)
		set("scheme", a.Scheme)
		if hu := uses.Sub("headers"); hu != nil {
			m["headers"] = headersRecord(a, headers, hu)
		}
	})
}

// headersRecord is context.request.headers: the allow-listed headers the
// request carries and uses names.
func headersRecord(a Attributes, headers []string, uses *policy.Uses) cedar.Record {
	var hm cedar.RecordMap
	for _, h := range headers {
		if uses.Sub(h) == nil {
			continue
		}
		if v, ok := a.Headers[h]; ok {
			if hm == nil {
				hm = scratchMaps.Get().(cedar.RecordMap)
			}
			hm[cedar.String(h)] = cedar.String(v)
		}
	}
	if hm == nil {
		return emptyRecord
	}
	rec := cedar.NewRecord(hm)
	clear(hm)
	scratchMaps.Put(hm)
	return rec
}

// scratchMaps recycles the maps records are built from: NewRecord copies
// its input, so a map can be reused as soon as the record exists, and the
// context costs one map allocation per record instead of two.
var scratchMaps = sync.Pool{New: func() any { return make(cedar.RecordMap, 8) }}

// newRecord builds a record from what fill puts in a scratch map.
func newRecord(fill func(cedar.RecordMap)) cedar.Record {
	m := scratchMaps.Get().(cedar.RecordMap)
	fill(m)
	rec := cedar.NewRecord(m)
	clear(m)
	scratchMaps.Put(m)
	return rec
}

// sourceKey is what context.source depends on: the downstream connection.
type sourceKey struct {
	address string
	peer    spiffeid.ID
}

func sourceRecord(address string, peer spiffeid.ID) cedar.Record {
	source := cedar.RecordMap{"address": cedar.String(address)}
	if ap, err := netip.ParseAddrPort(address); err == nil {
		ip := ap.Addr().Unmap()
		source["ip"] = types.IPAddr(netip.PrefixFrom(ip, ip.BitLen()))
	}
	if !peer.IsZero() {
		source["spiffe_id"] = cedar.String(peer.String())
		source["trust_domain"] = cedar.String(peer.TrustDomain().Name())
	}
	return cedar.NewRecord(source)
}

func routeRecord(r Route) cedar.Record {
	return cedar.NewRecord(cedar.RecordMap{
		"id":         cedar.String(r.ID),
		"service":    cedar.String(r.Service),
		"policy_set": cedar.String(r.PolicySet),
		"mode":       cedar.String(r.Mode),
	})
}

// Records that repeat across requests are built once: cedar-go's
// NewRecord sorts, hashes and copies its map, and building the context
// was the largest part of a decision's CPU. A route comes from the
// control plane's configuration; a source is a downstream connection,
// which carries many requests in a mesh (pooled HTTP/2 between sidecars).
var (
	routeRecords  = memo.New[Route, cedar.Record](4096)
	sourceRecords = memo.New[sourceKey, cedar.Record](16384)
	// A mesh has few workload identities and many requests from each.
	workloadEntities = memo.New[spiffeid.ID, *cedar.Entity](16384)
)
