//lint:file-ignore SA1019 the classic dashboard JSON model (dashboard, not dashboardv2) is what Grafana's file provisioning and dashboard sidecar load; v2 is the resource API of Grafana 12+.

package dashboards

import "github.com/grafana/grafana-foundation-sdk/go/dashboard"

func authz() *dashboard.DashboardBuilder {
	return base("meshguard-authz", "meshguard / authorizer",
		"Decisions, denies by route and policy set, latency, tokens, rollouts and the decision log of meshguard's ext_authz servers.").
		WithRow(dashboard.NewRowBuilder("Decisions")).
		WithPanel(single("Deny ratio", "Share of requests denied (enforced decisions).", "percentunit",
			query(`sum(rate(meshguard_authz_decisions_total{result="deny"}`+rate+`)) / sum(rate(meshguard_authz_decisions_total`+rate+`))`, "deny ratio"))).
		WithPanel(single("Decisions/s", "All decisions per second.", "reqps",
			query(`sum(rate(meshguard_authz_decisions_total`+rate+`))`, "decisions"))).
		WithPanel(single("Fail-closed denials/s", "Requests denied because the authorizer could not decide.", "reqps",
			query(`sum(rate(meshguard_authz_fail_closed_total`+rate+`))`, "fail closed"))).
		WithPanel(single("Decision log drops (1h)", "Decision log entries lost: a gap in the audit trail.", "short",
			query(`sum(increase(meshguard_authz_decision_log_dropped_total[1h]))`, "dropped"))).
		WithPanel(graph("Decisions by result", "Allowed and denied requests per second.", "reqps",
			query(`sum by (result) (rate(meshguard_authz_decisions_total`+rate+`))`, "{{result}}"))).
		WithPanel(graph("Denies by route and policy set", "Denied requests per second, per route and the policy set that decided.", "reqps",
			query(`sum by (route, policy_set) (rate(meshguard_authz_decisions_total{result="deny"}`+rate+`))`, "{{route}} ({{policy_set}})"))).
		WithPanel(graph("Denies by reason", "Why requests were denied: policy, token, route, fail-closed reasons.", "reqps",
			query(`sum by (reason) (rate(meshguard_authz_decisions_total{result="deny"}`+rate+`))`, "{{reason}}"))).
		WithPanel(graph("Fail-closed by reason", "Denials because no decision could be made (timeouts, unavailable keys, panics).", "reqps",
			query(`sum by (reason) (rate(meshguard_authz_fail_closed_total`+rate+`))`, "{{reason}}"))).
		WithRow(dashboard.NewRowBuilder("Latency")).
		WithPanel(graph("Decision latency", "Time to decide, request in to response built, by transport.", "s",
			query(`histogram_quantile(0.5, sum by (le, transport) (rate(meshguard_authz_decision_duration_seconds_bucket`+rate+`)))`, "p50 {{transport}}"),
			query(`histogram_quantile(0.99, sum by (le, transport) (rate(meshguard_authz_decision_duration_seconds_bucket`+rate+`)))`, "p99 {{transport}}"))).
		WithPanel(graph("Decision cache", "Policy evaluations served from the decision cache, evaluated and stored, or bypassed.", "ops",
			query(`sum by (result) (rate(meshguard_authz_decision_cache_total`+rate+`))`, "{{result}}"))).
		WithRow(dashboard.NewRowBuilder("Tokens")).
		WithPanel(graph("JWT failures", "Refused bearer tokens by provider and reason.", "reqps",
			query(`sum by (provider, reason) (rate(meshguard_authz_jwt_failures_total`+rate+`))`, "{{provider}} {{reason}}"))).
		WithPanel(graph("Revocation checks", "Verified tokens looked up in the revocation list, by result.", "reqps",
			query(`sum by (result) (rate(meshguard_authz_revocation_checks_total`+rate+`))`, "{{result}}"))).
		WithRow(dashboard.NewRowBuilder("Policies and rollouts")).
		WithPanel(graph("Rollout outcomes", "How each rollout's candidate set decided compared with the current set.", "reqps",
			query(`sum by (route, outcome) (rate(meshguard_authz_rollout_decisions_total`+rate+`))`, "{{route}} {{outcome}}"))).
		WithPanel(graph("Shadow decisions", "What shadow-mode routes and candidate sets would have decided.", "reqps",
			query(`sum by (policy_set, kind, would) (rate(meshguard_authz_shadow_decisions_total`+rate+`))`, "{{policy_set}} {{kind}} would {{would}}"))).
		WithPanel(graph("Policy reload errors", "Policy set loads that failed: the last good version stays enforced.", "short",
			query(`sum by (policy_set) (increase(meshguard_authz_policy_reload_errors_total`+rate+`))`, "{{policy_set}}"))).
		WithPanel(graph("Policy evaluation errors", "Cedar evaluation errors by policy set.", "short",
			query(`sum by (policy_set) (increase(meshguard_authz_policy_eval_errors_total`+rate+`))`, "{{policy_set}}")))
}
