package container

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// composeService is the part of a compose service the monitoring profile's checks read.
type composeService struct {
	Image       string
	Profiles    []string
	Command     []string
	Environment map[string]string
	Volumes     []string
	Ports       []string
	ReadOnly    bool                                  `yaml:"read_only"`
	DependsOn   map[string]struct{ Condition string } `yaml:"depends_on"`
}

func readCompose(t *testing.T) map[string]composeService {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var compose struct{ Services map[string]composeService }
	if err := yaml.Unmarshal(raw, &compose); err != nil {
		t.Fatal(err)
	}
	return compose.Services
}

// mounts maps container paths to the host files of a service's bind mounts, checking that each
// host path exists.
func mounts(t *testing.T, name string, svc composeService) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, v := range svc.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 || !strings.HasPrefix(parts[0], "./") {
			continue // a named volume
		}
		if len(parts) != 3 || parts[2] != "ro" {
			t.Errorf("%s mounts %s writable: configuration goes in read-only", name, v)
		}
		if _, err := os.Stat(filepath.Join(root, parts[0])); err != nil {
			t.Errorf("%s mounts %s: %v", name, parts[0], err)
		}
		m[parts[1]] = filepath.Join(root, parts[0])
	}
	return m
}

func TestComposeMonitoringProfile(t *testing.T) {
	services := readCompose(t)
	for _, name := range []string{"db", "api"} {
		if len(services[name].Profiles) != 0 {
			t.Errorf("%s has profiles %v: plain `docker compose up` must still start it", name, services[name].Profiles)
		}
	}
	prom, graf := services["prometheus"], services["grafana"]
	for name, svc := range map[string]composeService{"prometheus": prom, "grafana": graf} {
		if !slices.Equal(svc.Profiles, []string{"monitoring"}) {
			t.Errorf("%s profiles %v: want only [monitoring]", name, svc.Profiles)
		}
		if !regexp.MustCompile(`^[a-z0-9./-]+:v?\d+\.\d+\.\d+$`).MatchString(svc.Image) {
			t.Errorf("%s image %q: want a pinned version", name, svc.Image)
		}
		if !svc.ReadOnly {
			t.Errorf("%s: want a read-only root filesystem like the api", name)
		}
		for _, p := range svc.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("%s publishes %s beyond localhost", name, p)
			}
		}
	}
	if _, ok := prom.DependsOn["api"]; !ok {
		t.Errorf("prometheus depends_on %v: want the api it scrapes", prom.DependsOn)
	}
	if _, ok := graf.DependsOn["prometheus"]; !ok {
		t.Errorf("grafana depends_on %v: want prometheus", graf.DependsOn)
	}

	// Prometheus scrapes the API where the API serves /metrics: on HTTP_ADDR's port, since
	// compose sets no METRICS_ADDR.
	pm := mounts(t, "prometheus", prom)
	var configPath string
	for _, arg := range prom.Command {
		if v, ok := strings.CutPrefix(arg, "--config.file="); ok {
			configPath = v
		}
	}
	raw, err := os.ReadFile(pm[configPath])
	if err != nil {
		t.Fatalf("prometheus --config.file=%s is not mounted from the repository: %v", configPath, err)
	}
	var promCfg struct {
		ScrapeConfigs []struct {
			MetricsPath   string                       `yaml:"metrics_path"`
			StaticConfigs []struct{ Targets []string } `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(raw, &promCfg); err != nil {
		t.Fatal(err)
	}
	api := services["api"]
	if api.Environment["METRICS_ADDR"] != "" {
		t.Fatal("the checks below assume /metrics on the API's port")
	}
	want := "api" + api.Environment["HTTP_ADDR"]
	var targets []string
	for _, sc := range promCfg.ScrapeConfigs {
		if sc.MetricsPath != "/metrics" {
			t.Errorf("metrics_path %q: want /metrics", sc.MetricsPath)
		}
		for _, st := range sc.StaticConfigs {
			targets = append(targets, st.Targets...)
		}
	}
	if !slices.Equal(targets, []string{want}) {
		t.Errorf("prometheus targets %v: want [%s]", targets, want)
	}

	// Grafana: the provisioned data source is the prometheus service, the dashboard provider
	// reads the mounted dashboards, and every panel uses the provisioned data source.
	gm := mounts(t, "grafana", graf)
	provisioning := gm["/etc/grafana/provisioning"]
	var ds struct {
		Datasources []struct{ UID, Type, URL string }
	}
	readYAML(t, filepath.Join(provisioning, "datasources", "prometheus.yaml"), &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" || ds.Datasources[0].URL != "http://prometheus:9090" ||
		!slices.Contains(prom.Ports, "127.0.0.1:9090:9090") {
		t.Errorf("data sources %+v: want the prometheus service on its port 9090", ds.Datasources)
	}
	var dp struct {
		Providers []struct {
			Options struct{ Path string }
		}
	}
	readYAML(t, filepath.Join(provisioning, "dashboards", "rates.yaml"), &dp)
	if len(dp.Providers) != 1 || gm[dp.Providers[0].Options.Path] == "" {
		t.Fatalf("dashboard providers %+v: want one reading a mounted folder (mounts %v)", dp.Providers, gm)
	}
	home := graf.Environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
	dir, file := filepath.Split(home)
	if filepath.Clean(dir) != dp.Providers[0].Options.Path {
		t.Errorf("home dashboard %s is not in the provisioned folder %s", home, dp.Providers[0].Options.Path)
	}
	raw, err = os.ReadFile(filepath.Join(gm[dp.Providers[0].Options.Path], file))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID    string
		Panels []struct {
			Title      string
			Datasource struct{ UID string }
			Targets    []struct {
				Expr       string
				Datasource struct{ UID string }
			}
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if len(dash.Panels) < 8 {
		t.Errorf("dashboard has %d panels", len(dash.Panels))
	}
	for _, p := range dash.Panels {
		if p.Datasource.UID != ds.Datasources[0].UID || len(p.Targets) == 0 {
			t.Errorf("panel %q: data source %q, %d queries", p.Title, p.Datasource.UID, len(p.Targets))
		}
		for _, q := range p.Targets {
			if q.Datasource.UID != ds.Datasources[0].UID || q.Expr == "" {
				t.Errorf("panel %q query %q: data source %q", p.Title, q.Expr, q.Datasource.UID)
			}
		}
	}
	if graf.Environment["GF_AUTH_ANONYMOUS_ORG_ROLE"] != "Viewer" {
		t.Error("anonymous Grafana users must only view")
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
