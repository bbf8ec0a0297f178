package extauthz

import (
	"encoding/binary"
	"sync"

	"github.com/meshguard/meshguard/extauthz/policy"
)

// Cached evaluation results (policy.Results) are keyed by everything the
// evaluation depends on besides the load of the store, which owns the
// cache: the set's name, the principal and its entity, the action, the
// resource and the context as BuildRequest prunes it for the set. The key
// follows BuildRequest and Caller.principalEntity field by field; a value
// they read that the key left out would let two requests that differ
// share a result, so TestEvalKeyDeterminesTheRequest varies each input
// alone and requires one Cedar request per key, and FuzzEvalKey does the
// same for any policy text.
//
// Attributes no policy of the set reads (x-request-id, the source port…)
// are left out, as they are from the context: requests that differ only
// there share a result. Within a mesh the rest repeats: few callers, and
// paths from a service's fixed set of routes (gRPC method names).

// maxEvalKey bounds a key: a request with a longer one (long paths or
// header values) is evaluated without the cache, so it costs no cache
// memory whatever its size.
const maxEvalKey = 1024

// Field tags: a field's tag precedes its length-prefixed value, so keys of
// different shapes cannot collide.
const (
	keySet byte = iota + 1
	keyAnonymous
	keyUser
	keyWorkload
	keyAction
	keyResource
	keyMethod
	keyPath
	keyQuery
	keyHost
	keyScheme
	keyHeader
	keySource
	keyRoute
)

// appendEvalKey appends the key of the evaluation of set for a request to
// dst. It reports false when the request must not be cached: a key over
// maxEvalKey, or a user identity without its token's hash.
func appendEvalKey(dst []byte, set string, a *Attributes, r *Route, c *Caller, headers []string, uses *policy.Uses) ([]byte, bool) {
	dst = appendKeyField(dst, keySet, set)
	// The principal and its entity: a User's entity and context.jwt are
	// functions of the token; a Workload's entity of its SPIFFE ID.
	switch {
	case c.User != nil:
		if c.User.TokenHash == ([32]byte{}) {
			// Not from the verifier (which always sets it): nothing
			// identifies this user's claims, so do not cache.
			return dst, false
		}
		dst = appendKeyField(dst, keyUser, string(c.User.TokenHash[:]))
	case !c.Workload.IsZero():
		dst = appendKeyField(dst, keyWorkload, c.Workload.String())
	default:
		dst = append(dst, keyAnonymous)
	}
	action := r.Action
	if action == "" {
		action = a.Method
	}
	dst = appendKeyField(dst, keyAction, action)
	dst = appendKeyField(dst, keyResource, r.Service)

	if ru := uses.Sub("request"); ru != nil {
		for _, f := range []struct {
			tag     byte
			name, v string
		}{{keyMethod, "method", a.Method}, {keyPath, "path", a.Path}, {keyQuery, "query", a.Query}, {keyHost, "host", a.Host}, {keyScheme, "scheme", a.Scheme}} {
			if ru.Sub(f.name) != nil {
				dst = appendKeyField(dst, f.tag, f.v)
			}
		}
		if hu := ru.Sub("headers"); hu != nil {
			for _, h := range headers {
				// A present header is written with its name, an absent one
				// not at all.
				if v, ok := a.Headers[h]; ok && hu.Sub(h) != nil {
					dst = appendKeyField(appendKeyField(dst, keyHeader, h), keyHeader, v)
				}
			}
		}
	}
	if uses.Sub("source") != nil {
		dst = appendKeyField(appendKeyField(dst, keySource, a.SourceAddress), keySource, c.Peer.String())
	}
	if uses.Sub("route") != nil {
		for _, v := range []string{r.ID, r.Service, r.PolicySet, r.Mode} {
			dst = appendKeyField(dst, keyRoute, v)
		}
	}
	// context.jwt is the User's claims: in the key through keyUser.
	return dst, len(dst) <= maxEvalKey
}

func appendKeyField(dst []byte, tag byte, v string) []byte {
	dst = binary.AppendUvarint(append(dst, tag), uint64(len(v)))
	return append(dst, v...)
}

// keyBufs recycles key buffers: a key is built for every evaluation.
var keyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// putKeyBuf returns a buffer to keyBufs unless a long key grew it.
func putKeyBuf(bp *[]byte) {
	if cap(*bp) <= 4*maxEvalKey {
		*bp = (*bp)[:0]
		keyBufs.Put(bp)
	}
}
