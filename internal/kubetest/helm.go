package kubetest

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Chart is the directory of meshguard's Helm chart.
func Chart() string { return filepath.Join(repoRoot(), "charts", "meshguard") }

// RunHelm runs the Helm CLI with its caches and configuration in the
// test's temporary directories; the error carries Helm's stderr.
func RunHelm(t testing.TB, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(Helm(t), args...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
	if err := cmd.Run(); err != nil {
		return out.String(), errors.New(stderr.String())
	}
	return out.String(), nil
}

// Render returns the objects meshguard's chart renders as release
// "meshguard" in namespace "meshguard", with more helm template args
// (--set, -f).
func Render(t testing.TB, args ...string) []*unstructured.Unstructured {
	t.Helper()
	out, err := RunHelm(t, append([]string{"template", "meshguard", Chart(), "--namespace", "meshguard"}, args...)...)
	if err != nil {
		t.Fatalf("helm template: %v", err)
	}
	objs, err := Decode(strings.NewReader(out))
	if err != nil {
		t.Fatalf("helm template output: %v", err)
	}
	return objs
}

// Decode reads a stream of YAML (or JSON) documents; empty ones are
// skipped.
func Decode(r io.Reader) ([]*unstructured.Unstructured, error) {
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(r, 4096)
	for {
		var u unstructured.Unstructured
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, err
		}
		if len(u.Object) > 0 {
			objs = append(objs, &u)
		}
	}
}

// Into converts an object to its typed form.
func Into[T any](t testing.TB, u *unstructured.Unstructured) *T {
	t.Helper()
	var v T
	b, err := u.MarshalJSON()
	if err == nil {
		err = yaml.Unmarshal(b, &v)
	}
	if err != nil {
		t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
	}
	return &v
}
