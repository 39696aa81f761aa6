package rules

import (
	"reflect"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
)

// countMap is a failure map of quality.Values (by code or by class) as CEL
// sees it. Handing CEL the Go map instead makes it wrap the map by
// reflection on every evaluation, which was about a third of the time of a
// condition calling code(n). Lookups, membership and size are answered
// here; everything else (iteration, equality, conversion) goes to the
// wrapper cel-go would have built, so that the semantics stay cel-go's.
type countMap[K int64 | string] map[K]int64

var _ traits.Mapper = countMap[int64](nil)

// dyn is the map as cel-go wraps a Go map.
func (m countMap[K]) dyn() traits.Mapper {
	return types.DefaultTypeAdapter.NativeToValue(map[K]int64(m)).(traits.Mapper)
}

// key returns k as the map's key type; false for any other CEL type (a
// double, a uint, an error), which dyn handles.
func (m countMap[K]) key(k ref.Val) (K, bool) {
	switch k.(type) {
	case types.Int, types.String:
		key, ok := k.Value().(K)
		return key, ok
	}
	var zero K
	return zero, false
}

func (m countMap[K]) Find(k ref.Val) (ref.Val, bool) {
	if key, ok := m.key(k); ok {
		n, found := m[key]
		if !found {
			return nil, false
		}
		return types.Int(n), true
	}
	return m.dyn().Find(k)
}

func (m countMap[K]) Get(k ref.Val) ref.Val {
	if key, ok := m.key(k); ok {
		if n, found := m[key]; found {
			return types.Int(n)
		}
	}
	return m.dyn().Get(k) // the error cel-go gives for a missing key
}

func (m countMap[K]) Contains(k ref.Val) ref.Val {
	if key, ok := m.key(k); ok {
		_, found := m[key]
		return types.Bool(found)
	}
	return m.dyn().Contains(k)
}

func (m countMap[K]) Size() ref.Val               { return types.Int(len(m)) }
func (m countMap[K]) Iterator() traits.Iterator   { return m.dyn().Iterator() }
func (m countMap[K]) Equal(other ref.Val) ref.Val { return m.dyn().Equal(other) }
func (m countMap[K]) Type() ref.Type              { return types.MapType }
func (m countMap[K]) Value() any                  { return map[K]int64(m) }

func (m countMap[K]) ConvertToType(t ref.Type) ref.Val { return m.dyn().ConvertToType(t) }

func (m countMap[K]) ConvertToNative(t reflect.Type) (any, error) {
	return m.dyn().ConvertToNative(t)
}
