# The few entry points people type. `make demo` and `make test` work on a
# fresh machine with Rust installed: they add the wasm32-wasip2 target when
# it is missing.

CARGO ?= cargo
FLOW := target/release/flow
PLUGIN_CRATES := $(foreach dir,$(wildcard plugins/*/Cargo.toml tests/plugins/*/Cargo.toml),-p $(shell sed -n 's/^name = "\(.*\)"/\1/p' $(dir) | head -n1))

.PHONY: build demo test lint bench toolchain clean

## build: the host (target/release/flow) and every plugin (target/plugins/)
build: toolchain
	$(CARGO) build --release --locked -p flow-host
	plugins/build

## demo: build, run the example workflow, show the stored run
demo: build
	$(FLOW) run examples/orders.toml
	@echo
	$(FLOW) status

## test: the whole suite (unit, integration, golden, doc tests)
test: toolchain
	$(CARGO) test --locked --workspace

## lint: formatting and clippy, host and guests
lint: toolchain
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings
	$(CARGO) clippy --locked --target wasm32-wasip2 --target-dir target/wasm $(PLUGIN_CRATES) -- -D warnings

toolchain:
	@rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2

clean:
	$(CARGO) clean

## bench: the engine's overhead and the cost of WebAssembly, as a table
bench: toolchain
	$(CARGO) bench --locked -p flow-host --bench engine
