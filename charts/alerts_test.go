package charts

import (
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/internal/kubetest"
	"github.com/meshguard/meshguard/internal/metricstest"
)

const (
	rulesFile = "meshguard/alerts/meshguard-rules.yaml"
	rulesTest = "testdata/alerts.test.yaml"
)

type ruleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Alert string `json:"alert"`
			Expr  string `json:"expr"`
		} `json:"rules"`
	} `json:"groups"`
}

func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is not on PATH: make promtool (Debian: apt-get install prometheus)")
	}
	return p
}

// The rules load in Prometheus (promtool check rules), and each alert
// fires when it should and stays quiet otherwise (promtool test rules).
func TestAlertRulesPassPromtool(t *testing.T) {
	for _, args := range [][]string{{"check", "rules", rulesFile}, {"test", "rules", rulesTest}} {
		out, err := exec.Command(promtool(t), args...).CombinedOutput()
		if err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// Every rule queries series meshguard really exports, by labels they
// really have, and every alert has a promtool test that makes it fire.
func TestAlertRulesUseExportedSeriesAndAreTested(t *testing.T) {
	var rules ruleFile
	readYAML(t, rulesFile, &rules)
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `json:"alertname"`
				ExpAlerts []any  `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	readYAML(t, rulesTest, &tests)
	fires := map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			}
		}
	}
	cat := metricstest.Catalog(t)
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			n++
			for _, problem := range metricstest.CheckExpr(cat, r.Expr) {
				t.Errorf("%s: %s", r.Alert, problem)
			}
			if !fires[r.Alert] {
				t.Errorf("%s: no promtool test makes it fire", r.Alert)
			}
		}
	}
	if n < 10 {
		t.Fatalf("%d rules read from %s", n, rulesFile)
	}
}

// The chart ships the same rules as a PrometheusRule, and the dashboards
// as ConfigMaps for Grafana's sidecar, byte for byte.
func TestTheChartShipsTheRulesAndDashboards(t *testing.T) {
	var rules map[string]any
	readYAML(t, rulesFile, &rules)
	dashboards := 0
	for _, u := range kubetest.Render(t, "--set", "prometheusRule.enabled=true", "--set", "grafanaDashboards.enabled=true") {
		switch {
		case u.GetKind() == "PrometheusRule":
			spec := u.Object["spec"]
			b, _ := yaml.Marshal(spec)
			var got map[string]any
			_ = yaml.Unmarshal(b, &got)
			if !reflect.DeepEqual(got, rules) {
				t.Errorf("the PrometheusRule's spec is not %s", rulesFile)
			}
		case u.GetKind() == "ConfigMap" && strings.HasSuffix(u.GetName(), "-dashboard"):
			cm := kubetest.Into[corev1.ConfigMap](t, u)
			if cm.Labels["grafana_dashboard"] != "1" {
				t.Errorf("%s: labels %v, want grafana_dashboard=1", cm.Name, cm.Labels)
			}
			for name, body := range cm.Data {
				want, err := os.ReadFile("meshguard/dashboards/" + name)
				if err != nil || strings.TrimSpace(string(want)) != body {
					t.Errorf("%s: %s is not the chart's dashboard file (%v)", cm.Name, name, err)
				}
				dashboards++
			}
		}
	}
	if dashboards != 3 {
		t.Errorf("%d dashboards rendered, want 3", dashboards)
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
