//lint:file-ignore SA1019 the classic dashboard JSON model (dashboard, not dashboardv2) is what Grafana's file provisioning and dashboard sidecar load; v2 is the resource API of Grafana 12+.

package dashboards

import "github.com/grafana/grafana-foundation-sdk/go/dashboard"

func rateLimit() *dashboard.DashboardBuilder {
	return base("meshguard-ratelimit", "meshguard / rate limits",
		"meshguard's global rate-limit service (Envoy RLS on Redis): decisions, over-limit answers, Redis errors and reloads.").
		WithRow(dashboard.NewRowBuilder("Decisions")).
		WithPanel(graph("Descriptors decided", "Limited descriptors per second, by domain and result.", "ops",
			query(`sum by (domain, result) (rate(meshguard_ratelimit_decisions_total`+rate+`))`, "{{domain}} {{result}}"))).
		WithPanel(graph("Over limit by limit", "Over-limit answers per second, by limit (its place in the configuration) and shadow mode.", "ops",
			query(`sum by (domain, limit, shadow) (rate(meshguard_ratelimit_decisions_total{result="over_limit"}`+rate+`))`, "{{domain}} {{limit}} shadow={{shadow}}"))).
		WithRow(dashboard.NewRowBuilder("Health")).
		WithPanel(graph("Redis errors", "Requests whose counters Redis could not update, by the failure mode applied (open: allowed, closed: over limit).", "ops",
			query(`sum by (failure_mode) (rate(meshguard_ratelimit_redis_errors_total`+rate+`))`, "fail {{failure_mode}}"))).
		WithPanel(graph("Invalid requests", "Requests refused as malformed.", "ops",
			query(`sum(rate(meshguard_ratelimit_invalid_requests_total`+rate+`))`, "invalid"))).
		WithPanel(graph("Configuration reloads", "Reloads of the limits, by result; a failed one keeps the last good configuration.", "short",
			query(`sum by (result) (increase(meshguard_ratelimit_config_reloads_total`+rate+`))`, "{{result}}")))
}
