package extauthz

import (
	"errors"
	"net/http"
	"time"

	"github.com/meshguard/meshguard/extauthz/revocation"
	"github.com/meshguard/meshguard/internal/admincmd"
)

// RevokeRequest is the body of POST /v1/revocations: exactly one of JTI,
// SID and Sub. Expires defaults to now + TTL, TTL to the configuration's
// revocation.default_ttl; Before (a subject's cutoff) to now.
type RevokeRequest struct {
	JTI     string    `json:"jti,omitempty"`
	SID     string    `json:"sid,omitempty"`
	Sub     string    `json:"sub,omitempty"`
	Before  time.Time `json:"before,omitzero"`
	Expires time.Time `json:"expires,omitzero"`
	TTL     string    `json:"ttl,omitempty"`
	Actor   string    `json:"actor,omitempty"`
	Reason  string    `json:"reason,omitempty"`
}

// Entry turns the request into a revocation at now.
func (r RevokeRequest) Entry(now time.Time, defaultTTL time.Duration) (revocation.Entry, error) {
	var e revocation.Entry
	n := 0
	for _, f := range []struct{ kind, v string }{{revocation.KindToken, r.JTI}, {revocation.KindSession, r.SID}, {revocation.KindSubject, r.Sub}} {
		if f.v != "" {
			e.Kind, e.Value = f.kind, f.v
			n++
		}
	}
	if n != 1 {
		return e, errors.New("give exactly one of jti, sid and sub")
	}
	if e.Kind == revocation.KindSubject {
		e.Before = r.Before
		if e.Before.IsZero() {
			e.Before = now
		}
	} else if !r.Before.IsZero() {
		return e, errors.New("before: only with sub")
	}
	ttl := defaultTTL
	if r.TTL != "" {
		d, err := time.ParseDuration(r.TTL)
		if err != nil {
			return e, errors.New("ttl: " + err.Error())
		}
		ttl = d
	}
	switch {
	case !r.Expires.IsZero() && r.TTL != "":
		return e, errors.New("give expires or ttl, not both")
	case !r.Expires.IsZero():
		e.Expires = r.Expires
	default:
		e.Expires = now.Add(ttl)
	}
	return e, e.Validate(now)
}

// revocationAPI serves the revocation list: GET its state, POST a
// revocation (an admin command: the admin token, or a loopback listener).
func (s *Server) revocationAPI(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/revocations", func(w http.ResponseWriter, _ *http.Request) {
		if s.revocations == nil {
			admincmd.WriteError(w, http.StatusNotFound, errors.New("no revocation list: the configuration has no redis block"))
			return
		}
		admincmd.WriteJSON(w, http.StatusOK, s.revocations.Status())
	})
	mux.HandleFunc("POST /v1/revocations", func(w http.ResponseWriter, r *http.Request) {
		gate := &admincmd.Gate{Token: s.adminToken, Listener: s.adminLis, Hint: "set admin_token_file in the authorizer's configuration (meshguard revoke --token-file)"}
		var req RevokeRequest
		if !gate.Decode(w, r, &req) {
			return
		}
		if s.revocations == nil {
			admincmd.WriteError(w, http.StatusNotFound, errors.New("no revocation list: the configuration has no redis block"))
			return
		}
		e, err := req.Entry(time.Now(), s.cfg.Revocation.DefaultTTL)
		if err != nil {
			admincmd.WriteError(w, http.StatusBadRequest, err)
			return
		}
		if err := s.revocations.Revoke(r.Context(), e); err != nil {
			admincmd.WriteError(w, http.StatusServiceUnavailable, err)
			return
		}
		// A jti, sid or subject names a credential without being one: it
		// may be logged, for the audit trail.
		s.log.Info("revoked", "kind", e.Kind, "value", e.Value, "before", e.Before, "expires", e.Expires,
			"by", admincmd.Actor(r, req.Actor), "reason", admincmd.Printable(req.Reason, 1024))
		admincmd.WriteJSON(w, http.StatusOK, e)
	})
}
