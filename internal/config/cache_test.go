package config

import (
	"strings"
	"testing"
	"time"
)

func TestLoadCache(t *testing.T) {
	env := func(m map[string]string) Lookup {
		return func(name string) (string, bool) { v, ok := m[name]; return v, ok }
	}
	for _, tc := range []struct {
		name    string
		env     map[string]string
		want    Cache
		wantErr []string
	}{
		{"defaults", nil, Cache{PollInterval: 500 * time.Millisecond, Preload: 500 * time.Millisecond}, nil},
		{"values", map[string]string{"CACHE_CONTROL_MAX_AGE": "30", "GENERATION_POLL_INTERVAL": "100ms", "CACHE_PRELOAD_TIMEOUT": "0"},
			Cache{MaxAge: 30 * time.Second, PollInterval: 100 * time.Millisecond}, nil},
		{"max-age as a duration", map[string]string{"CACHE_CONTROL_MAX_AGE": "2m"},
			Cache{MaxAge: 2 * time.Minute, PollInterval: 500 * time.Millisecond, Preload: 500 * time.Millisecond}, nil},
		{"out of range", map[string]string{"CACHE_CONTROL_MAX_AGE": "2h", "GENERATION_POLL_INTERVAL": "1ms", "CACHE_PRELOAD_TIMEOUT": "-1s"}, Cache{},
			[]string{"CACHE_CONTROL_MAX_AGE", "GENERATION_POLL_INTERVAL: \"1ms\" is not a duration from 10ms to 5s", "CACHE_PRELOAD_TIMEOUT"}},
		{"not durations", map[string]string{"CACHE_CONTROL_MAX_AGE": "1.5s", "GENERATION_POLL_INTERVAL": "soon"}, Cache{},
			[]string{"CACHE_CONTROL_MAX_AGE", "GENERATION_POLL_INTERVAL"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := LoadCache(env(tc.env))
			if tc.wantErr == nil {
				if err != nil || got != tc.want {
					t.Fatalf("LoadCache = %+v, %v; want %+v", got, err, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("LoadCache = %+v, want errors naming %v", got, tc.wantErr)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
