package translate

import (
	"maps"
	"path/filepath"
	"testing"

	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"

	"github.com/meshguard/meshguard/controlplane/model"
	"github.com/meshguard/meshguard/extauthz"
	"github.com/meshguard/meshguard/internal/contract"
)

// The context extensions are a contract with the authorizer: every
// protected route of every golden mesh, its rollout at each stage and at a
// controller's step included, merges (virtual host, then route, as Envoy
// merges them) into settings the authorizer accepts, with the policy,
// candidate and share the model says.
func TestAuthorizerAcceptsEveryRoute(t *testing.T) {
	cases, _ := filepath.Glob("testdata/*/in.yaml")
	for _, in := range cases {
		m := loadMesh(t, in)
		steps := []*model.RolloutStep{nil,
			{Policy: "p", Candidate: "c", Stage: contract.StageShadow, Revision: "r1"},
			{Policy: "p", Candidate: "c", Stage: contract.StageCanary, Canary: 1250, Revision: "r2"},
			{Policy: "c", Stage: contract.StageEnforce, Revision: "r3"},
			{Policy: "p", Revision: "r4"}, // rolled back
		}
		for _, step := range steps {
			for i := range m.Spec.Services {
				svc := &m.Spec.Services[i]
				for j := range svc.Routes {
					r := svc.Routes[j]
					if r.Public {
						continue
					}
					if step != nil {
						r.Rollout, r.Shadow, r.Step = &model.Rollout{Candidate: "c"}, "", step
					}
					ext := ServiceExtensions(svc)
					maps.Copy(ext, RouteExtensions(&r))
					got, err := extauthz.RouteFromExtensions(ext)
					if err != nil {
						t.Fatalf("%s route %s at %+v: the authorizer refuses %v: %v", in, r.ID, step, ext, err)
					}
					want := r.EffectiveStep()
					if want == nil {
						want = &model.RolloutStep{Policy: r.Policy}
					}
					if got.PolicySet != want.Policy || got.Candidate != want.Candidate || got.Canary != want.Canary || got.Service != svc.Name || got.ID != r.ID {
						t.Fatalf("%s route %s: authorizer reads %+v from %v, want %+v", in, r.ID, got, ext, want)
					}
				}
			}
		}
	}
}

// The translated routes carry exactly RouteExtensions: the per-route
// config in RDS is what the demo app and the tests above compute.
func TestRoutesCarryRouteExtensions(t *testing.T) {
	m := loadMesh(t, "testdata/rollout/in.yaml")
	res, err := Workload(m, "api-0")
	if err != nil {
		t.Fatal(err)
	}
	svc, _ := m.Service("api")
	vh := res.Routes[0].GetVirtualHosts()[0]
	for i, rt := range vh.GetRoutes() {
		var pr extauthzv3.ExtAuthzPerRoute
		if err := rt.GetTypedPerFilterConfig()[ExtAuthzFilter].UnmarshalTo(&pr); err != nil {
			t.Fatal(err)
		}
		if got, want := pr.GetCheckSettings().GetContextExtensions(), RouteExtensions(&svc.Routes[i]); !maps.Equal(got, want) {
			t.Fatalf("route %s carries %v, want %v", rt.GetName(), got, want)
		}
	}
}
