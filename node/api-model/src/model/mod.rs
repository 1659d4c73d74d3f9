//! The JSON shapes of the REST API: the bodies that create jobs, statements and completions
//! (`request`), Livy's response objects (`livy`) and the native API's documents
//! (`native`). Their paths are re-exported here, as one vocabulary for the handlers.

mod livy;
mod native;
mod request;

pub use livy::*;
pub use native::*;
pub use request::*;
