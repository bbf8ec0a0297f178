//lint:file-ignore SA1019 the classic dashboard JSON model (dashboard, not dashboardv2) is what Grafana's file provisioning and dashboard sidecar load; v2 is the resource API of Grafana 12+.

package dashboards

import "github.com/grafana/grafana-foundation-sdk/go/dashboard"

func controlPlane() *dashboard.DashboardBuilder {
	return base("meshguard-controlplane", "meshguard / control plane",
		"Proxies, pushes, NACKs and the identities meshguard's xDS control plane serves.").
		WithRow(dashboard.NewRowBuilder("Proxies")).
		WithPanel(single("Connected proxies", "Proxies with an open xDS stream, every replica.", "short",
			query(`sum(meshguard_xds_connected_proxies)`, "proxies"))).
		WithPanel(single("NACKs (1h)", "Configuration versions proxies rejected.", "short",
			query(`sum(increase(meshguard_xds_nacks_total[1h]))`, "NACKs"))).
		WithPanel(single("Soonest SVID expiry", "Time left on the soonest-expiring SVID served (re-issued at half-life: it should stay above half the SVID lifetime).", "s",
			query(`min(meshguard_controlplane_svid_expiry_timestamp_seconds > 0) - time()`, "SVID"))).
		WithPanel(single("Dev CA expiry", "Time left on the dev CA's certificate.", "s",
			query(`min(meshguard_controlplane_ca_expiry_timestamp_seconds > 0) - time()`, "CA"))).
		WithPanel(graph("Connected proxies by replica", "Proxies per control plane replica.", "short",
			query(`sum by (instance) (meshguard_xds_connected_proxies)`, "{{instance}}"))).
		WithPanel(graph("NACKs by type", "Responses proxies rejected, by resource type.", "short",
			query(`sum by (type) (increase(meshguard_xds_nacks_total`+rate+`))`, "{{type}}"))).
		WithPanel(graph("Pushes by type", "xDS responses sent per second.", "ops",
			query(`sum by (type) (rate(meshguard_xds_pushes_total`+rate+`))`, "{{type}}"))).
		WithPanel(graph("Push to ACK latency", "From a version set for a proxy to the proxy ACKing it.", "s",
			query(`histogram_quantile(0.99, sum by (le, type) (rate(meshguard_xds_push_latency_seconds_bucket`+rate+`)))`, "p99 {{type}}"))).
		WithRow(dashboard.NewRowBuilder("Identity")).
		WithPanel(graph("SVID and CA expiry", "Time left on the soonest SVID and on the dev CA.", "s",
			query(`min(meshguard_controlplane_svid_expiry_timestamp_seconds > 0) - time()`, "soonest SVID"),
			query(`min(meshguard_controlplane_ca_expiry_timestamp_seconds > 0) - time()`, "dev CA"))).
		WithPanel(graph("Insecure key delivery", "1 where workload keys go to unauthenticated loopback peers (--insecure-loopback-sds).", "short",
			query(`max by (instance) (meshguard_controlplane_insecure_secrets)`, "{{instance}}")))
}
