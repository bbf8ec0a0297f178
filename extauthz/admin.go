package extauthz

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/meshguard/meshguard/extauthz/jwt"
	"github.com/meshguard/meshguard/extauthz/policy"
	"github.com/meshguard/meshguard/extauthz/revocation"
	"github.com/meshguard/meshguard/internal/version"
)

// AdminStatus is served at /v1/status: what is loaded and whether it is ready.
type AdminStatus struct {
	Version      string               `json:"version"`
	Ready        bool                 `json:"ready"`
	Policies     policy.Status        `json:"policies"`
	Providers    []jwt.ProviderStatus `json:"jwt_providers"`
	CachedTokens int                  `json:"cached_tokens"`
	// CachedDecisions is the number of evaluation results in the decision
	// cache of the current load of the policies.
	CachedDecisions    int    `json:"cached_decisions"`
	DecisionLogDropped uint64 `json:"decision_log_dropped"`
	// Revocations is the revocation list's state (with Redis).
	Revocations *revocation.Status `json:"revocations,omitempty"`
}

// Status reports the authorizer's state.
func (a *Authorizer) Status() AdminStatus {
	st := AdminStatus{
		Version:            version.Version,
		Ready:              a.Ready(),
		Policies:           a.store.Status(),
		Providers:          []jwt.ProviderStatus{},
		DecisionLogDropped: a.dlog.Dropped(),
		CachedDecisions:    a.store.Results().Len(),
	}
	if a.verifier != nil {
		st.Providers = a.verifier.Status()
		st.CachedTokens = a.verifier.CachedTokens()
	}
	if a.revocations != nil {
		rs := a.revocations.Status()
		st.Revocations = &rs
	}
	return st
}

// adminHandler serves /healthz (the process is up), /readyz (policies and
// keys loaded), /metrics and /v1/status.
func adminHandler(a *Authorizer, g prometheus.Gatherer, withPprof bool) *http.ServeMux {
	mux := http.NewServeMux()
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !a.Ready() {
			w.Header().Set("content-type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_ = json.NewEncoder(w).Encode(a.Status())
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, a.Status())
	})
	mux.HandleFunc("GET /v1/rollouts", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, a.RolloutStatus())
	})
	mux.HandleFunc("GET /v1/denies", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, a.RecentDenies())
	})
	return mux
}

// RolloutStatus is the rollout counts of every step seen since start.
func (a *Authorizer) RolloutStatus() RolloutStatus { return a.rollouts.status() }

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("content-type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
