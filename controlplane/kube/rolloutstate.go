package kube

import (
	"context"
	"fmt"
	"log/slog"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshguard/meshguard/controlplane/rollout"
)

// RolloutStateConfigMap holds where every rollout stands (key
// state.json): the leader writes it, every replica serves it.
const RolloutStateConfigMap = "meshguard-rollout-state"

const rolloutStateKey = "state.json"

// ConfigMapState keeps the rollout controller's state in a ConfigMap of
// the control plane's namespace, so that every replica serves the same
// steps and revisions and a new leader continues where the last one was.
type ConfigMapState struct {
	// Reader reads the API server directly: the state is loaded before
	// the cache has synced.
	Reader    client.Reader
	Writer    client.Client
	Namespace string
}

func (s ConfigMapState) String() string {
	return fmt.Sprintf("ConfigMap %s/%s", s.Namespace, RolloutStateConfigMap)
}

func (s ConfigMapState) key() client.ObjectKey {
	return client.ObjectKey{Namespace: s.Namespace, Name: RolloutStateConfigMap}
}

// Load returns the ConfigMap's state; no ConfigMap is no state.
func (s ConfigMapState) Load(ctx context.Context) ([]byte, error) {
	var cm corev1.ConfigMap
	if err := s.Reader.Get(ctx, s.key(), &cm); apierrors.IsNotFound(err) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	data, ok := cm.Data[rolloutStateKey]
	if !ok {
		return nil, nil
	}
	return []byte(data), nil
}

// Save creates or replaces the ConfigMap. Only the leader saves, so an
// update conflicts only with a leader that just lost its lease: then the
// write is refused, and the new leader's state stands.
func (s ConfigMapState) Save(ctx context.Context, data []byte) error {
	var cm corev1.ConfigMap
	err := s.Reader.Get(ctx, s.key(), &cm)
	if apierrors.IsNotFound(err) {
		cm = corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: RolloutStateConfigMap,
				Labels: map[string]string{"app.kubernetes.io/managed-by": "meshguard"}},
			Data: map[string]string{rolloutStateKey: string(data)},
		}
		return s.Writer.Create(ctx, &cm)
	}
	if err != nil {
		return err
	}
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	cm.Data[rolloutStateKey] = string(data)
	return s.Writer.Update(ctx, &cm)
}

// followRolloutState hands every change of the state ConfigMap to ctl (a
// no-op on the leader, which wrote it).
func followRolloutState(ctx context.Context, c cache.Cache, namespace string, ctl *rollout.Controller, log *slog.Logger) error {
	inf, err := c.GetInformer(ctx, &corev1.ConfigMap{})
	if err != nil {
		return err
	}
	take := func(obj any) {
		cm, ok := obj.(*corev1.ConfigMap)
		if !ok || cm.Namespace != namespace || cm.Name != RolloutStateConfigMap {
			return
		}
		if data, ok := cm.Data[rolloutStateKey]; ok {
			if err := ctl.Replace([]byte(data)); err != nil {
				log.Error("the leader's rollout state is refused; serving the last one taken", "err", err)
			}
		}
	}
	_, err = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    take,
		UpdateFunc: func(_, obj any) { take(obj) },
	})
	return err
}
