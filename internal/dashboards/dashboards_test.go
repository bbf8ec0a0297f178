//lint:file-ignore SA1019 the classic dashboard JSON model (dashboard, not dashboardv2) is what Grafana's file provisioning and dashboard sidecar load; v2 is the resource API of Grafana 12+.

package dashboards

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"

	"github.com/meshguard/meshguard/internal/metricstest"
)

const dir = "../../charts/meshguard/dashboards"

// The chart's dashboards are what this package builds (make generate),
// and Grafana's schema accepts them: a strict decode, then Validate.
func TestTheChartsDashboardsAreValidAndCurrent(t *testing.T) {
	all, err := All()
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) != len(all) {
		t.Fatalf("%d dashboard files, %d dashboards built: run make generate", len(files), len(all))
	}
	for name, d := range all {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.MarshalIndent(d, "", "  ")
		if !bytes.Equal(bytes.TrimSpace(data), want) {
			t.Errorf("%s is not what internal/dashboards builds: run make generate", name)
		}
		var back dashboard.Dashboard
		if err := strictDecode(&back, data); err != nil {
			t.Errorf("%s: strict decode: %v", name, err)
			continue
		}
		if err := back.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	// The decode is strict: a misspelt field is an error.
	data, _ := os.ReadFile(filepath.Join(dir, "meshguard-authz.json"))
	var back dashboard.Dashboard
	if err := strictDecode(&back, bytes.Replace(data, []byte(`"refresh"`), []byte(`"refersh"`), 1)); err == nil {
		t.Error("a dashboard with a misspelt field decoded")
	}
}

// Every panel queries series meshguard really exports, grouped and
// matched by labels they really have.
func TestEveryPanelQueriesExportedSeries(t *testing.T) {
	all, err := All()
	if err != nil {
		t.Fatal(err)
	}
	cat := metricstest.Catalog(t)
	var covered []string
	for name, d := range all {
		for _, p := range d.Panels {
			if p.Panel == nil {
				continue
			}
			if len(p.Panel.Targets) == 0 {
				t.Errorf("%s: panel %q has no query", name, deref(p.Panel.Title))
			}
			for _, target := range p.Panel.Targets {
				q, ok := target.(*prometheus.Dataquery)
				if v, isValue := target.(prometheus.Dataquery); isValue {
					q, ok = &v, true
				}
				if !ok {
					t.Fatalf("%s: panel %q: a %T query", name, deref(p.Panel.Title), target)
				}
				for _, problem := range metricstest.CheckExpr(cat, q.Expr) {
					t.Errorf("%s: panel %q: %s in %s", name, deref(p.Panel.Title), problem, q.Expr)
				}
				covered = append(covered, q.Expr)
			}
		}
	}
	// What the dashboards are for (the on-call engineer's questions).
	for _, must := range []string{"meshguard_authz_decisions_total{result=\"deny\"}", "by (route, policy_set)",
		"meshguard_authz_decision_duration_seconds_bucket", "meshguard_authz_jwt_failures_total",
		"meshguard_authz_rollout_decisions_total", "meshguard_xds_connected_proxies", "meshguard_xds_nacks_total",
		"meshguard_controlplane_svid_expiry_timestamp_seconds", "meshguard_authz_decision_log_dropped_total"} {
		if !slices.ContainsFunc(covered, func(e string) bool { return strings.Contains(e, must) }) {
			t.Errorf("no panel shows %s", must)
		}
	}
}

// The check bites: a misspelt metric or a label the metric lacks is found.
func TestCheckExprFindsWhatDoesNotExist(t *testing.T) {
	cat := metricstest.Catalog(t)
	for expr, want := range map[string]string{
		`rate(meshguard_authz_decision_total[5m])`:                          "unknown metric",
		`sum by (op) (rate(meshguard_ratelimit_redis_errors_total[5m]))`:    "label op",
		`meshguard_xds_nacks_total{typ="Listener"}`:                         "label typ",
		`rate(meshguard_authz_decisions_total_bucket[5m])`:                  "unknown metric",
		`sum by (le) (rate(meshguard_xds_push_latency_seconds_bucket[5m]))`: "",
	} {
		problems := strings.Join(metricstest.CheckExpr(cat, expr), "; ")
		if (want == "") != (problems == "") || !strings.Contains(problems, want) {
			t.Errorf("%s: %q, want %q", expr, problems, want)
		}
	}
}

// strictDecode decodes a dashboard refusing unknown fields. The SDK
// returns its error list typed even when it is empty.
func strictDecode(d *dashboard.Dashboard, data []byte) error {
	err := d.UnmarshalJSONStrict(data)
	var list cog.BuildErrors
	if errors.As(err, &list) && len(list) == 0 {
		return nil
	}
	return err
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
