//! A component that imports `test:absent/store`, an interface the host never
//! links: the host must refuse it when loading, naming the interface.

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

struct Probe;

impl Guest for Probe {
    fn probe() -> Option<String> {
        test::absent::store::get("key")
    }
}

export!(Probe);
