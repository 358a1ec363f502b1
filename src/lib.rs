pub mod hash;
pub mod proto;
pub mod stamp;
pub mod wire;
