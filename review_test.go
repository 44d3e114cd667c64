package auth

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReviewExportKeyingMaterialOddInput gives ExportKeyingMaterial input
// the exporter cannot honour: a negative length must be an error, not a
// panic, and a label or context too long for its u16 length prefix must be
// refused rather than silently encoded with a wrapped length (which would
// let two different label/context pairs export the same bytes).
func TestReviewExportKeyingMaterialOddInput(t *testing.T) {
	client, _ := pipePair(t, nil, nil)

	for _, n := range []int{-1, -1 << 40} {
		var err error
		require.NotPanics(t, func() { _, err = client.ExportKeyingMaterial("label", nil, n) }, "n=%d", n)
		require.Error(t, err, "n=%d", n)
		assert.True(t, strings.HasPrefix(err.Error(), "auth: "), err.Error())
	}

	long := strings.Repeat("x", 1<<16)
	_, err := client.ExportKeyingMaterial(long, nil, 32)
	assert.Error(t, err, "a label of 65536 bytes does not fit its u16 length")
	_, err = client.ExportKeyingMaterial("label", []byte(long), 32)
	assert.Error(t, err, "a context of 65536 bytes does not fit its u16 length")

	ok, err := client.ExportKeyingMaterial(long[:1<<16-1], []byte(long[:1<<16-1]), 32)
	require.NoError(t, err, "the longest label and context that fit")
	assert.Len(t, ok, 32)
}
