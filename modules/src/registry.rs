//! The registry macro: from one line per domain, everything the crate lists once.
//!
//! A line `Links(links) => [link::Link],` (in `lib.rs`) names the domain's variant in
//! the central enums, its folder, and its modules in documentation order. The folder's
//! `mod.rs` names its payloads: `Key` (its fact keys, a
//! [`DomainKey`](crate::fact::DomainKey)), `Value` (their values) and `Action` (its
//! changes, a [`DomainChange`](crate::change::DomainChange)). From the lines the macro
//! generates [`FactKey`](crate::FactKey),
//! [`Fact`](crate::Fact) and [`Change`](crate::Change) with one variant per domain; the
//! `From` impls that build them from a payload; the one match each that hands a call to
//! the domain; [`MODULE_NAMES`](crate::MODULE_NAMES) and
//! [`deserialize_params`](crate::deserialize_params) and
//! [`secret_params`](crate::secret_params). Adding a domain is its folder, its
//! line and its `pub mod` beside the line; a module in an existing domain is its file
//! and one more entry on its domain's line.

macro_rules! registry {
    ($($variant:ident($domain:ident) => [$($($module:ident)::+),* $(,)?]),* $(,)?) => {
        /// The name of one fact about a host: the host's own, or one a domain reads.
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        pub enum FactKey {
            /// Host name and operating system.
            System,
            /// Hardware and network: what `gather_facts` gives templates.
            Machine,
            $(
                #[serde(untagged)]
                $variant($domain::Key),
            )*
        }

        /// The value of one fact.
        #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
        pub enum Fact {
            System($crate::fact::SystemInfo),
            Machine($crate::fact::MachineInfo),
            /// converge must not read or act on this: the reason says why (a symbolic
            /// link or an unsafe ownership transition on the way, a file too large to read).
            Refused(String),
            $(
                #[serde(untagged)]
                $variant($domain::Value),
            )*
        }

        /// One action on a host.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Change {
            $($variant($domain::Action),)*
        }

        impl FactKey {
            /// The domain that reads this fact; `None` for [`FactKey::System`] and
            /// [`FactKey::Machine`].
            pub fn domain(&self) -> Option<&dyn $crate::fact::DomainKey> {
                match self {
                    FactKey::System | FactKey::Machine => None,
                    $(FactKey::$variant(key) => Some(key),)*
                }
            }
        }

        impl Change {
            /// The domain that carries this change out.
            pub fn domain(&self) -> &dyn $crate::change::DomainChange {
                match self {
                    $(Change::$variant(change) => change,)*
                }
            }
        }

        $(
            impl From<$domain::Key> for FactKey {
                fn from(key: $domain::Key) -> Self {
                    FactKey::$variant(key)
                }
            }

            impl From<$domain::Value> for Fact {
                fn from(value: $domain::Value) -> Self {
                    Fact::$variant(value)
                }
            }

            impl From<$domain::Action> for Change {
                fn from(change: $domain::Action) -> Self {
                    Change::$variant(change)
                }
            }
        )*

        /// Every module's name, in documentation order.
        pub const MODULE_NAMES: &[&str] = &[$($(<$domain::$($module)::+ as $crate::Module>::NAME),*),*];

        /// The secret parameters of the module called `name` (see
        /// [`Module::SECRET_PARAMS`](crate::Module::SECRET_PARAMS)).
        pub fn secret_params(name: &str) -> &'static [&'static str] {
            $($(
                if name == <$domain::$($module)::+ as $crate::Module>::NAME {
                    return <$domain::$($module)::+ as $crate::Module>::SECRET_PARAMS;
                }
            )*)*
            &[]
        }

        /// Deserializes the parameters of the module called `name`, or returns `None`
        /// when there is no such module.
        pub fn deserialize_params<'de, D: serde::Deserializer<'de>>(
            name: &str,
            deserializer: D,
        ) -> Option<Result<Box<dyn $crate::DynModule>, D::Error>> {
            $($(
                if name == <$domain::$($module)::+ as $crate::Module>::NAME {
                    return Some(
                        <$domain::$($module)::+ as serde::Deserialize>::deserialize(deserializer)
                            .map(|m| Box::new(m) as Box<dyn $crate::DynModule>),
                    );
                }
            )*)*
            None
        }
    };
}
