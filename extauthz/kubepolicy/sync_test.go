package kubepolicy

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshguard/meshguard/api/v1alpha1"
	"github.com/meshguard/meshguard/extauthz/policy"
	"github.com/meshguard/meshguard/internal/kubetest"
	"github.com/meshguard/meshguard/internal/poll"
)

const permit = `@id("allow") permit (principal, action, resource);`

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, 10*time.Second, what, cond)
}

// The authorizer's store, over the synced directory, enforces what the
// PolicySets say, follows their edits and deletions, and keeps the last
// good version of a set whose new text does not parse.
func TestTheAuthorizerEnforcesThePolicySetsOfItsNamespace(t *testing.T) {
	c := kubetest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kc := c.Client
	c.Create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "meshguard"}}, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "elsewhere"}})
	create := func(o client.Object) { t.Helper(); c.Create(t, o) }
	create(&v1alpha1.PolicySet{ObjectMeta: metav1.ObjectMeta{Namespace: "meshguard", Name: "orders"},
		Spec: v1alpha1.PolicySetSpec{Policies: map[string]string{"read.cedar": permit}}})
	create(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "meshguard", Name: "web-policies"},
		Data: map[string]string{"web.cedar": permit, "README.md": "not a policy"}})
	create(&v1alpha1.PolicySet{ObjectMeta: metav1.ObjectMeta{Namespace: "meshguard", Name: "web"},
		Spec: v1alpha1.PolicySetSpec{ConfigMapRef: &v1alpha1.LocalObjectReference{Name: "web-policies"}}})
	// Another namespace's sets are not the authorizer's.
	create(&v1alpha1.PolicySet{ObjectMeta: metav1.ObjectMeta{Namespace: "elsewhere", Name: "intruder"},
		Spec: v1alpha1.PolicySetSpec{Policies: map[string]string{"all.cedar": permit}}})

	dir := t.TempDir()
	s, err := New(Config{RestConfig: c.Config, Namespace: "meshguard", Dir: dir, Debounce: 20 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Run(ctx) }()
	eventually(t, "the first write", s.Synced)

	store := policy.NewStore(dir, "")
	sets := func() []string {
		_ = store.Reload()
		var names []string
		for _, st := range store.Status().Sets {
			names = append(names, st.Name)
		}
		return names
	}
	if got := strings.Join(sets(), ","); got != "orders,web" {
		t.Fatalf("sets = %s, want orders,web", got)
	}

	// An edit arrives whole; a broken edit keeps the last good version.
	var ps v1alpha1.PolicySet
	update := func(text string) {
		t.Helper()
		if err := kc.Get(ctx, client.ObjectKey{Namespace: "meshguard", Name: "orders"}, &ps); err != nil {
			t.Fatal(err)
		}
		ps.Spec.Policies = map[string]string{"read.cedar": text}
		if err := kc.Update(ctx, &ps); err != nil {
			t.Fatal(err)
		}
	}
	update(permit + "\n" + `@id("deny-delete") forbid (principal, action == Action::"DELETE", resource);`)
	eventually(t, "the edit enforced", func() bool {
		_ = store.Reload()
		set, ok := store.Set("orders")
		return ok && set.Len() == 2
	})
	update(`permit (principal, action, resource`)
	eventually(t, "the broken edit reported", func() bool {
		_ = store.Reload()
		for _, st := range store.Status().Sets {
			if st.Name == "orders" && st.LastError != "" {
				return true
			}
		}
		return false
	})
	if set, ok := store.Set("orders"); !ok || set.Len() != 2 {
		t.Fatal("a broken edit did not keep the last good version")
	}

	// A deleted set is gone from the directory (its routes are denied).
	if err := kc.Delete(ctx, &v1alpha1.PolicySet{ObjectMeta: metav1.ObjectMeta{Namespace: "meshguard", Name: "web"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "web removed", func() bool { return strings.Join(sets(), ",") == "orders" })
}

func TestFilesLeavesOutWhatCannotBeASet(t *testing.T) {
	sets := []v1alpha1.PolicySet{
		{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: v1alpha1.PolicySetSpec{Policies: map[string]string{"base.cedar": permit}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "nocm"}, Spec: v1alpha1.PolicySetSpec{ConfigMapRef: &v1alpha1.LocalObjectReference{Name: "missing"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "empty"}, Spec: v1alpha1.PolicySetSpec{Policies: map[string]string{"notes.txt": "x"}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "sneaky"}, Spec: v1alpha1.PolicySetSpec{Policies: map[string]string{"../../etc/x.cedar": permit, ".hidden.cedar": permit}}},
	}
	files, skipped := Files(sets, nil)
	if len(files) != 1 || string(files["base.cedar"]) != permit {
		t.Fatalf("files = %v, want only the default set's base.cedar at the top", files)
	}
	if len(skipped) != 3 || !strings.Contains(strings.Join(skipped, ";"), "no ConfigMap missing") {
		t.Fatalf("skipped = %v", skipped)
	}
}
