package apiserver

import (
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http/httptest"
	"testing"

	"gvs/api"
	"gvs/control"
	"gvs/engine"
	"gvs/ipvs"
)

type sysctlTestEngine struct{ *engine.Table }

func (sysctlTestEngine) Name() string { return "table" }
func (sysctlTestEngine) Close() error { return nil }

func TestGetSysctls(t *testing.T) {
	core := control.New(sysctlTestEngine{engine.NewTable(ipvs.Options{})}, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := core.SetSysctls(map[string]int{"expire_nodest_conn": 1}); err != nil {
		t.Fatal(err)
	}
	s := New(core, api.Info{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	rec := httptest.NewRecorder()
	s.http.Handler.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/sysctls", nil))
	var got map[string]int
	if err := json.Unmarshal(rec.Body.Bytes(), &got); rec.Code != 200 || err != nil {
		t.Fatalf("%d %v: %s", rec.Code, err, rec.Body)
	}
	want := map[string]int{
		"conn_reuse_mode": 1, "expire_nodest_conn": 1, "expire_quiescent_template": 0, "nat_icmp_send": 0,
		"schedule_icmp": 0, "sloppy_tcp": 0, "sloppy_udp": 0, "snat_reroute": 1,
	}
	if !maps.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
