//! A component that imports `test:absent/store`, an interface the host never
//! links: the host must refuse it when loading, naming the interface.

#[allow(missing_docs)]
mod bindings {
    wit_bindgen::generate!({
        inline: r"
            package test:absent;

            interface store {
                get: func(key: string) -> option<string>;
            }

            world probe {
                import store;
                export probe: func() -> option<string>;
            }
        ",
        world: "probe",
    });
}

struct Probe;

impl bindings::Guest for Probe {
    fn probe() -> Option<String> {
        bindings::test::absent::store::get("key")
    }
}

bindings::export!(Probe with_types_in bindings);
