# The few entry points people type. `make demo` and `make test` work on a
# fresh machine with Rust, Python 3 and Node.js: they add the wasm32-wasip2
# target and the pinned Python and JavaScript plugin tools when missing, and
# `make test` Debian's Chromium for the dashboard's browser tests and
# Debian's PostgreSQL for the shared store's.

CARGO ?= cargo
TARGET := $(or $(CARGO_TARGET_DIR),target)
FLOW := $(TARGET)/release/flow
PLUGIN_CRATES := $(foreach dir,$(wildcard plugins/*/Cargo.toml tests/plugins/*/Cargo.toml),-p $(shell sed -n 's/^name = "\(.*\)"/\1/p' $(dir) | head -n1))
PYTHON_PLUGINS := $(patsubst %/app.py,%,$(wildcard plugins/*/app.py))
# The side jobs of `make test`, through a variable of their own: a recipe
# line that names $(MAKE) itself runs even under `make -n`.
SIDE_MAKE = $(MAKE) --no-print-directory

.PHONY: build demo test test-guests package-check install-check lint bench toolchain browser postgres clean

## build: the host (target/release/flow), every plugin (target/plugins/,
## target/test-plugins/) and the tests. One build serves build, test and
## bench: the same packages and features on the release profile, so that
## wasmtime compiles once.
build: toolchain
	@# The plugins build in a target directory of their own, beside the host
	@# and the tests, so the two builds share the cores.
	plugins/build --tests & plugins=$$!; \
	$(CARGO) test --release --locked --workspace --no-run; host=$$?; \
	wait $$plugins && exit $$host

## demo: build, run the example workflow of Rust, Python and JavaScript
## plugins, show the stored run, then run the report example (files, a
## local HTTP endpoint, a secret)
demo: build
	$(FLOW) run examples/mixed.toml --plugins $(TARGET)/plugins
	@echo
	$(FLOW) status
	@echo
	@# The report example reads a CSV file, calls a local endpoint with a
	@# secret and writes examples/out/report.json.
	@python3 -m http.server 8088 --bind 127.0.0.1 --directory examples/data/site >/dev/null 2>&1 & \
	server=$$!; trap 'kill $$server' EXIT; \
	for i in $$(seq 100); do \
		python3 -c "import socket; socket.create_connection(('127.0.0.1', 8088)).close()" 2>/dev/null && break; \
		sleep 0.05; \
	done; \
	FLOW_SECRET_RATES_TOKEN=demo-token $(FLOW) run examples/report.toml --plugins $(TARGET)/plugins && \
	cat examples/out/report.json

## test: the whole suite: unit, integration, golden and doc tests, and the
## tests of the Python and JavaScript SDKs and plugins. On the release
## profile, like build and bench, so that wasmtime compiles once for all.
test: build browser postgres
	@# The guests' tests and the packages' checks run beside the Rust tests,
	@# one test per core (cargo's default): tests of the shared store see
	@# leases of one second lapse, and more at once on a busy machine can
	@# delay a live process's renewal past its lease.
	$(SIDE_MAKE) test-guests package-check & side=$$!; \
	$(CARGO) test --release --locked --workspace; rust=$$?; \
	wait $$side && exit $$rust

## package-check: the plugin SDK packs into a crate that builds on its own;
## the host packs too. In a target directory of their own, so that they
## run beside other builds without waiting for theirs.
package-check:
	CARGO_TARGET_DIR=$(abspath $(TARGET))/package-check $(CARGO) package --locked --allow-dirty --quiet -p flow-plugin-sdk
	# The host package carries what it builds from (its WIT copy); verifying
	# it would compile wasmtime once more, so it is only listed here.
	CARGO_TARGET_DIR=$(abspath $(TARGET))/package-check $(CARGO) package --locked --allow-dirty --quiet --no-verify -p flow-host

test-guests:
	cd plugin-sdk/python && python3 -m unittest --quiet
	for plugin in $(PYTHON_PLUGINS); do \
		(cd $$plugin && PYTHONPATH=$(CURDIR)/plugin-sdk/python python3 -m unittest --quiet) || exit 1; \
	done
	cd plugin-sdk/js && node --import ./test/register-host-stub.mjs --test test/*.test.mjs $(wildcard $(CURDIR)/plugins/*/*.test.mjs)
	# The Python helper installs with pip, and its flow-plugin-build makes
	# a component of an action that has nothing else beside it.
	$(TARGET)/python/bin/pip install --quiet --disable-pip-version-check --no-deps --force-reinstall ./plugin-sdk/python
	rm -rf $(TARGET)/pip-built && mkdir -p $(TARGET)/pip-built && cp plugins/words/app.py $(TARGET)/pip-built/
	cd $(TARGET)/pip-built && $(abspath $(TARGET))/python/bin/flow-plugin-build app.py -o words.wasm
	od -An -tx1 -N8 $(TARGET)/pip-built/words.wasm | grep -q '00 61 73 6d 0d 00 01 00'
	# The JavaScript helper installs with npm from its packed tarball, and
	# its flow-plugin-build bundles an action that imports it by name.
	rm -rf $(TARGET)/npm-built && mkdir -p $(TARGET)/npm-built
	cd plugin-sdk/js && npm pack --silent --pack-destination $(abspath $(TARGET))/npm-built >/dev/null
	cp plugin-sdk/js/test/outside/greet.js $(TARGET)/npm-built/
	cd $(TARGET)/npm-built && echo '{"type": "module"}' > package.json && \
		npm install --silent --no-audit --no-fund --prefer-offline ./flow-plugin-*.tgz && \
		npx --no-install flow-plugin-build greet.js -o greet.wasm
	od -An -tx1 -N8 $(TARGET)/npm-built/greet.wasm | grep -q '00 61 73 6d 0d 00 01 00'

## install-check: `cargo install --locked --path host` into $(TARGET)/install
## (not part of `make test`: without the tests' dev-dependencies the build
## resolves other features and compiles wasmtime a second time)
install-check:
	CARGO_TARGET_DIR=$(abspath $(TARGET)) $(CARGO) install --locked --quiet --force --path host --root $(TARGET)/install
	$(TARGET)/install/bin/flow --version | grep -q '^flow '

## lint: formatting and clippy, host and guests; the library without the
## command line's dependencies
lint: toolchain
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings
	$(CARGO) clippy --locked -p flow-host --lib --no-default-features -- -D warnings
	$(CARGO) clippy --locked --target wasm32-wasip2 --target-dir $(TARGET)/wasm $(PLUGIN_CRATES) -- -D warnings

## bench: the engine's overhead and the cost of WebAssembly, as a table
bench: toolchain postgres
	$(CARGO) bench --locked --workspace --bench engine

toolchain:
	@rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
	@plugins/build --tools

## browser: Debian's Chromium and ChromeDriver, which the dashboard's
## tests drive, when missing
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
		sudo=; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
		$$sudo apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends \
			chromium chromium-driver >/dev/null; }

## postgres: Debian's PostgreSQL server binaries, when missing; the tests
## start their own server from them (nothing runs as a service)
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || { \
		sudo=; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
		$$sudo apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends \
			postgresql >/dev/null; }

clean:
	$(CARGO) clean
