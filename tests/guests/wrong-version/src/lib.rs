//! A component built for `monasca:processor@9.0.0`, an incompatible major
//! version: the host must refuse it, naming both versions.

wit_bindgen::generate!({
    inline: "
        package monasca:processor@9.0.0;
        interface processor {
            init: func(config: list<tuple<string, string>>) -> result<_, string>;
            process: func(batch: list<list<u8>>) -> result<list<list<u8>>, string>;
        }
        world stateless {
            export processor;
        }
    ",
});

struct Future;

impl exports::monasca::processor::processor::Guest for Future {
    fn init(_config: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }

    fn process(batch: Vec<Vec<u8>>) -> Result<Vec<Vec<u8>>, String> {
        Ok(batch)
    }
}

export!(Future);
