package translate

import (
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
)

// Each broken reference is reported by both the publish-time check and the
// deep one, naming what is missing.
func TestChecksReportBrokenReferences(t *testing.T) {
	m := loadMesh(t, "testdata/basic/in.yaml")
	for _, tc := range []struct {
		name   string
		damage func(r *Resources)
		want   string
	}{
		{"route to a missing cluster", func(r *Resources) { r.Clusters = r.Clusters[:0] }, "no cluster"},
		{"EDS cluster without endpoints", func(r *Resources) { r.Endpoints = nil }, "no endpoints"},
		{"RDS name without a route configuration", func(r *Resources) { r.Routes = nil }, "no such route configuration"},
		{"SDS secret not served", func(r *Resources) { r.Secrets = nil }, "is referenced but not served"},
		{"invalid resource", func(r *Resources) { r.Clusters = append(r.Clusters, &clusterv3.Cluster{}) }, "invalid Cluster.Name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Workload(m, "web-0")
			if err != nil {
				t.Fatal(err)
			}
			tc.damage(r)
			for check, err := range map[string]error{"checkRefs": r.checkRefs(), "Check": r.Check()} {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%s = %v, want an error containing %q", check, err, tc.want)
				}
			}
		})
	}
}
