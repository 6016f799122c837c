//! `#[derive(Registered)]`: registers a struct's fields as a minibatch module's children and
//! parameters, the Rust answer to PyTorch's `__setattr__`.

use proc_macro::TokenStream;
use quote::quote;
use syn::{parse_macro_input, Data, DeriveInput, Fields, Index, Member};

/// Implements `minibatch::Registered` and `Display` (PyTorch's repr) for a struct.
///
/// Each field is a child module (its type must implement `minibatch::Module`) named after the
/// field, in declaration order, unless marked:
/// - `#[module(param)]`: a `minibatch::Param` of this module;
/// - `#[module(buffer)]`: a `minibatch::Buffer` (saved with the weights, never trained);
/// - `#[module(training)]`: a `minibatch::TrainingMode`, set by `train()` and `eval()` (PyTorch's
///   `self.training`) before the children are;
/// - `#[module(skip)]`: none of these (a size, a flag, a cache).
///
/// ```text
/// #[derive(Registered)]
/// struct Model { l1: Linear, l2: Linear, #[module(skip)] hidden: usize }
/// ```
#[proc_macro_derive(Registered, attributes(module))]
pub fn derive_registered(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand(&input) {
        Ok(ts) => ts.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

enum Role {
    Child,
    Param,
    Buffer,
    Training,
    Skip,
}

fn role(field: &syn::Field) -> syn::Result<Role> {
    let mut role = Role::Child;
    for attr in field.attrs.iter().filter(|a| a.path().is_ident("module")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("param") {
                role = Role::Param;
                Ok(())
            } else if meta.path.is_ident("buffer") {
                role = Role::Buffer;
                Ok(())
            } else if meta.path.is_ident("training") {
                role = Role::Training;
                Ok(())
            } else if meta.path.is_ident("skip") {
                role = Role::Skip;
                Ok(())
            } else {
                Err(meta.error("expected `param`, `buffer`, `training` or `skip`"))
            }
        })?;
    }
    Ok(role)
}

fn expand(input: &DeriveInput) -> syn::Result<proc_macro2::TokenStream> {
    let Data::Struct(data) = &input.data else {
        return Err(syn::Error::new_spanned(&input.ident, "Registered can only be derived for structs"));
    };
    let mut children = Vec::new();
    let mut params = Vec::new();
    let mut buffers = Vec::new();
    let mut modes = Vec::new();
    let mut flags = Vec::new();
    let fields: Vec<&syn::Field> = match &data.fields {
        Fields::Named(f) => f.named.iter().collect(),
        Fields::Unnamed(f) => f.unnamed.iter().collect(),
        Fields::Unit => Vec::new(),
    };
    for (i, field) in fields.into_iter().enumerate() {
        let (member, name) = match &field.ident {
            Some(id) => (Member::Named(id.clone()), id.to_string()),
            None => (Member::Unnamed(Index::from(i)), i.to_string()),
        };
        match role(field)? {
            Role::Child => children.push(quote! { (#name.to_string(), &self.#member as &dyn ::minibatch::Module) }),
            Role::Param => params.push(quote! { (#name.to_string(), ::core::clone::Clone::clone(&self.#member)) }),
            Role::Buffer => buffers.push(quote! { (#name.to_string(), ::core::clone::Clone::clone(&self.#member)) }),
            Role::Training => {
                modes.push(quote! { ::minibatch::TrainingMode::set(&self.#member, training); });
                flags.push(quote! { ::minibatch::TrainingMode::is_training(&self.#member) });
            }
            Role::Skip => {}
        }
    }
    // With a training flag of its own, the module sets it, then its children as the default does,
    // and answers `is_training` from its first flag.
    let first_flag = flags.first();
    let set_training = (!modes.is_empty()).then(|| {
        quote! {
            fn set_training(&self, training: bool) {
                #(#modes)*
                for (_, child) in ::minibatch::Registered::named_children(self) {
                    child.set_training(training);
                }
            }
            fn is_training(&self) -> ::core::option::Option<bool> {
                ::core::option::Option::Some(#first_flag)
            }
        }
    });
    let ident = &input.ident;
    let type_name = ident.to_string();
    let (impl_g, ty_g, where_c) = input.generics.split_for_impl();
    let mut display_where = input.generics.clone().make_where_clause().clone();
    display_where.predicates.push(syn::parse_quote!(Self: ::minibatch::Module));
    Ok(quote! {
        impl #impl_g ::minibatch::Registered for #ident #ty_g #where_c {
            fn named_children(&self) -> ::std::vec::Vec<(::std::string::String, &dyn ::minibatch::Module)> {
                ::std::vec![#(#children),*]
            }
            fn own_parameters(&self) -> ::std::vec::Vec<(::std::string::String, ::minibatch::Param)> {
                ::std::vec![#(#params),*]
            }
            fn own_buffers(&self) -> ::std::vec::Vec<(::std::string::String, ::minibatch::Buffer)> {
                ::std::vec![#(#buffers),*]
            }
            fn type_name(&self) -> ::std::string::String {
                #type_name.to_string()
            }
            #set_training
        }
        impl #impl_g ::std::fmt::Display for #ident #ty_g #display_where {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(&::minibatch::module::repr(self))
            }
        }
    })
}
