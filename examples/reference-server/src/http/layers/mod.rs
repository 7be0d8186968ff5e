//! The tower layers of the request pipeline, one file each.

pub mod limits;
