package controlplane

import (
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshguard/meshguard/controlplane/model"
	"github.com/meshguard/meshguard/internal/xds"
)

// scaleMesh is a mesh of services × perService sidecars, each service calling deps others.
func scaleMesh(services, perService, deps int) string {
	var b strings.Builder
	b.WriteString("apiVersion: meshguard.dev/v1alpha1\nkind: Mesh\nmetadata: {name: scale}\nspec:\n  trustDomain: scale.test\n  authz: {address: 127.0.0.1:9191}\n  services:\n")
	n := 0
	for s := 0; s < services; s++ {
		fmt.Fprintf(&b, "    - name: svc%d\n      port: %d\n      calls: [", s, 10000+s)
		for d := 1; d <= deps; d++ {
			if d > 1 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "svc%d", (s+d)%services)
		}
		b.WriteString("]\n      routes:\n        - {match: {prefix: /api, methods: [GET]}}\n        - {match: {prefix: /}}\n      workloads:\n")
		for w := 0; w < perService; w++ {
			fmt.Fprintf(&b, "        - {name: svc%d-%d, address: 10.%d.%d.%d}\n", s, w, n>>16&255, n>>8&255, n&255)
			n++
		}
	}
	return b.String()
}

// BenchmarkApply measures one full rebuild: translate every workload,
// intern, publish.
func BenchmarkApply(b *testing.B) {
	for _, c := range []struct{ services, per int }{{100, 10}, {100, 50}} {
		m, err := model.Parse([]byte(scaleMesh(c.services, c.per, 5)), nil)
		if err != nil {
			b.Fatal(err)
		}
		builder := NewBuilder(xds.NewCache(slog.New(slog.NewTextHandler(io.Discard, nil)), nil), filepath.Join(b.TempDir(), "ca"), 0,
			slog.New(slog.NewTextHandler(io.Discard, nil)))
		b.Run(fmt.Sprintf("proxies=%d/services=%d", c.services*c.per, c.services), func(b *testing.B) {
			for b.Loop() {
				if err := builder.Apply(m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
