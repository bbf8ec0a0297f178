package translate

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/meshguard/meshguard/controlplane/model"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestGolden translates testdata/<case>/in.yaml for every sidecar workload and
// compares each resource type with testdata/<case>/out/<workload>/<type>.yaml.
// Regenerate with: go test ./controlplane/translate -run TestGolden -update
// loadMesh parses a mesh file under testdata.
func loadMesh(t *testing.T, path string) *model.Mesh {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Parse(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestGolden(t *testing.T) {
	cases, err := filepath.Glob("testdata/*/in.yaml")
	if err != nil || len(cases) == 0 {
		t.Fatalf("no golden cases: %v", err)
	}
	for _, in := range cases {
		dir := filepath.Dir(in)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			m := loadMesh(t, in)
			for _, svc := range m.Spec.Services {
				for _, w := range svc.Workloads {
					fn := Workload
					if w.Proxyless {
						fn = Proxyless
					}
					res, err := fn(m, w.Name)
					if err != nil {
						t.Fatal(err)
					}
					if err := res.Check(); err != nil {
						t.Fatalf("%s: deep check: %v", w.Name, err)
					}
					for typ, msgs := range map[string][]proto.Message{
						"listeners": asMessages(res.Listeners),
						"routes":    asMessages(res.Routes),
						"clusters":  asMessages(res.Clusters),
						"endpoints": asMessages(res.Endpoints),
					} {
						compareGolden(t, filepath.Join(dir, "out", w.Name, typ+".yaml"), render(t, msgs))
					}
				}
			}
		})
	}
}

func asMessages[T proto.Message](in []T) []proto.Message {
	out := make([]proto.Message, len(in))
	for i, m := range in {
		out[i] = m
	}
	return out
}

// render turns resources into stable YAML: protojson (Anys expanded), then
// YAML with sorted keys, since protojson's spacing is deliberately unstable.
func render(t *testing.T, msgs []proto.Message) []byte {
	t.Helper()
	docs := make([]any, 0, len(msgs))
	for _, m := range msgs {
		js, err := protojson.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(js, &v); err != nil {
			t.Fatal(err)
		}
		docs = append(docs, v)
	}
	out, err := yaml.Marshal(docs)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func compareGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(want) != string(got) {
		t.Errorf("%s differs from the translation (run with -update and review the diff):\n%s", path, firstDiff(string(want), string(got)))
	}
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) && i < len(bl); i++ {
		if al[i] != bl[i] {
			return "line " + strconv.Itoa(i+1) + ":\n- " + al[i] + "\n+ " + bl[i]
		}
	}
	return "lengths differ"
}
