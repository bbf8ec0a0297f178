//lint:file-ignore SA1019 the classic dashboard JSON model (dashboard, not dashboardv2) is what Grafana's file provisioning and dashboard sidecar load; v2 is the resource API of Grafana 12+.

// Package dashboards builds meshguard's Grafana dashboards from the
// metrics the code exports (docs/operations.md), with the Grafana
// Foundation SDK. tools/dashboards writes them to charts/meshguard/dashboards
// (make generate); the chart ships them as ConfigMaps for Grafana's sidecar.
package dashboards

import (
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// All are meshguard's dashboards, by file name.
func All() (map[string]dashboard.Dashboard, error) {
	out := map[string]dashboard.Dashboard{}
	for name, b := range map[string]*dashboard.DashboardBuilder{
		"meshguard-authz.json":        authz(),
		"meshguard-controlplane.json": controlPlane(),
		"meshguard-ratelimit.json":    rateLimit(),
	} {
		d, err := b.Build()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out[name] = d
	}
	return out, nil
}

// ds is the Prometheus data source the dashboard's variable selects.
var ds = common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr("${datasource}")}

func base(uid, title, description string) *dashboard.DashboardBuilder {
	return dashboard.NewDashboardBuilder(title).
		Uid(uid).
		Description(description).
		Tags([]string{"meshguard"}).
		Refresh("30s").
		Time("now-1h", "now").
		Timezone(common.TimeZoneBrowser).
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		WithVariable(dashboard.NewDatasourceVariableBuilder("datasource").Label("Data source").Type("prometheus"))
}

func query(expr, legend string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().Expr(expr).LegendFormat(legend)
}

// graph is a time series panel of queries.
func graph(title, description, unit string, queries ...*prometheus.DataqueryBuilder) *timeseries.PanelBuilder {
	p := timeseries.NewPanelBuilder().Title(title).Description(description).Unit(unit).
		Datasource(ds).Height(8).Span(12).Min(0)
	for _, q := range queries {
		p = p.WithTarget(q)
	}
	return p
}

// single is a stat panel of one query.
func single(title, description, unit string, q *prometheus.DataqueryBuilder) *stat.PanelBuilder {
	return stat.NewPanelBuilder().Title(title).Description(description).Unit(unit).
		Datasource(ds).Height(4).Span(6).WithTarget(q)
}

const rate = "[$__rate_interval]"
