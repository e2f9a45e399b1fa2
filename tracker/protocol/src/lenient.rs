//! Building blocks of lenient serde readers: `Visitor` methods that read every JSON type a field
//! does not want as "invalid" instead of failing the message. A reader built from them never asks
//! serde_json for a type error, whose message (it formats numbers) would pull float formatting
//! into the browser build.

/// Implements the `Visitor` methods for JSON scalars other than strings: each is read as
/// `$invalid`.
#[cfg(feature = "tracker")]
macro_rules! scalars_are {
    ($invalid:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($invalid)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($invalid)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($invalid)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($invalid)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($invalid)
        }
    };
}

/// Implements the `Visitor` methods for every JSON type a reader does not want (scalars and
/// objects): the value is consumed and read as `$invalid`.
#[cfg(feature = "tracker")]
macro_rules! other_types_are {
    ($invalid:expr) => {
        scalars_are!($invalid);
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok($invalid)
        }
    };
}

/// Implements `visit_seq` as "consume the array, read as `$invalid`".
#[cfg(feature = "tracker")]
macro_rules! arrays_are {
    ($invalid:expr) => {
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok($invalid)
        }
    };
}

/// Implements `visit_str` and its borrowed and owned forms through one `fn(&str) -> Value`.
macro_rules! strings_through {
    ($read:expr) => {
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
            Ok($read(s))
        }
        fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
            Ok($read(s))
        }
        fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
            Ok($read(&s))
        }
    };
}
