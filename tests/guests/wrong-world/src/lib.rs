//! A component built for a world other than `monasca:processor`: the host
//! must refuse it and say why.

wit_bindgen::generate!({
    inline: "
        package other:greeter@0.1.0;
        world greeter {
            export greet: func(name: string) -> string;
        }
    ",
});

struct Greeter;

impl Guest for Greeter {
    fn greet(name: String) -> String {
        format!("hello {name}")
    }
}

export!(Greeter);
