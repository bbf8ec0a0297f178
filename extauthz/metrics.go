package extauthz

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the authorizer's Prometheus metrics. Label values come from a
// fixed vocabulary or from loaded policy set names, never from request data,
// so cardinality stays bounded.
type Metrics struct {
	Decisions       *prometheus.CounterVec
	Latency         *prometheus.HistogramVec
	JWTFailures     *prometheus.CounterVec
	Reloads         *prometheus.CounterVec
	ReloadErrors    *prometheus.CounterVec
	FailClosed      *prometheus.CounterVec
	Shadow          *prometheus.CounterVec
	EvalErrors      *prometheus.CounterVec
	DecisionDropped prometheus.Counter
	DecisionCache   *prometheus.CounterVec
	Rollout         *prometheus.CounterVec
	Revocation      *prometheus.CounterVec

	routes routeLabels
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshguard_authz_decisions_total",
			Help: "Authorization decisions by enforced result (allow|deny), mode, policy set, route (at most 1000 distinct: then _other; _none without a route) and reason.",
		}, []string{"result", "mode", "policy_set", "route", "reason"}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "meshguard_authz_decision_duration_seconds",
			Help:    "Time to decide, from request received to response built, by transport.",
			Buckets: []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .1},
		}, []string{"transport"}),
		JWTFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshguard_authz_jwt_failures_total",
			Help: "Refused bearer tokens by provider (empty when none matched) and reason.",
		}, []string{"provider", "reason"}),
		Reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshguard_authz_policy_reloads_total",
			Help: "Policy set load attempts by set and result (ok|error).",
		}, []string{"policy_set", "result"}),
		ReloadErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshguard_authz_policy_reload_errors_total",
			Help: "Policy set loads that failed; the last good version stays enforced.",
		}, []string{"policy_set"}),
		FailClosed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshguard_authz_fail_closed_total",
			Help: "Requests denied because the authorizer could not decide, by reason.",
		}, []string{"reason"}),
		Shadow: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshguard_authz_shadow_decisions_total",
			Help: "Shadow evaluations by policy set and the result enforcement would have had (allow|deny). kind=mode for routes in shadow mode, kind=candidate for meshguard.shadow sets.",
		}, []string{"policy_set", "kind", "would"}),
		EvalErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshguard_authz_policy_eval_errors_total",
			Help: "Cedar policy evaluation errors by policy set.",
		}, []string{"policy_set"}),
		DecisionDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meshguard_authz_decision_log_dropped_total",
			Help: "Decision log entries dropped because the log buffer was full.",
		}),
		DecisionCache: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshguard_authz_decision_cache_total",
			Help: "Policy evaluations by decision cache outcome: hit, miss, or bypass (a key over 1 KiB). A route with a candidate set beside its own makes two evaluations per request.",
		}, []string{"result"}),
		Revocation: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshguard_authz_revocation_checks_total",
			Help: "Verified tokens looked up in the revocation list, by provider and result: ok, revoked, unavailable_denied or unavailable_allowed (the list could not be trusted and the provider's on_unavailable decided).",
		}, []string{"provider", "result"}),
		Rollout: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meshguard_authz_rollout_decisions_total",
			Help: "Requests of rollout routes by route, current policy set, candidate set and how the candidate decided compared with the current set: same, allow_to_deny, deny_to_allow, or error (the candidate failed to evaluate or is not loaded).",
		}, []string{"route", "set", "candidate", "outcome"}),
	}
	reg.MustRegister(m.Decisions, m.Latency, m.JWTFailures, m.Reloads, m.ReloadErrors,
		m.FailClosed, m.Shadow, m.EvalErrors, m.DecisionDropped, m.DecisionCache, m.Rollout, m.Revocation)
	return m
}

// onReload is the policy store's reload hook.
func (m *Metrics) onReload(set string, err error) {
	if err != nil {
		m.Reloads.WithLabelValues(set, "error").Inc()
		m.ReloadErrors.WithLabelValues(set).Inc()
		return
	}
	m.Reloads.WithLabelValues(set, "ok").Inc()
}
