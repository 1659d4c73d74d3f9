//! The JSON shapes of the REST API: the bodies that create jobs, statements and completions
//! (`request`), Livy's response objects (`livy`), the native API's documents (`native`, with
//! a job's `attempts`) and
//! API tokens (`token`) and logins (`login`). Their paths are re-exported here, as one vocabulary for the
//! handlers.

mod attempts;
mod livy;
mod login;
mod native;
mod request;
mod token;

pub use attempts::*;
pub use livy::*;
pub use login::*;
pub use native::*;
pub use request::*;
pub use token::*;
