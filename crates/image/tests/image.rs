//! Integration tests of the image store on real files (run as root: they set
//! owners, make device nodes and run debootstrap).

mod image {
    pub mod support;

    mod debian_cache;
    mod debootstrap;
    mod dir_import;
    mod host;
    mod oci_import;
    mod store_ops;
    mod tar_hostile;
    mod tar_import;
    mod tar_mutations;
}
