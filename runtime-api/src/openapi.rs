//! OpenAPI schemas that derive macros cannot express (feature `openapi`).
//!
//! A [`WorkerEvent`](crate::dto::WorkerEvent) and a
//! [`Problem`](crate::Problem) are each a set of common fields plus one
//! variant of an internally tagged enum flattened beside them. Client
//! generators handle that best as a discriminated union of named, titled
//! object schemas, one per variant, each holding the common fields too:
//! `TextDeltaEvent`, `UnknownWorkerProblem`, and so on. This module builds
//! that union from the enum's derived schema, so the variants are written
//! once, in the enum.

use utoipa::openapi::schema::{
    Discriminator, Object, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::{Ref, RefOr};

/// A schema and the named schemas it refers to.
pub(crate) type Named = Vec<(String, RefOr<Schema>)>;

/// The union of `variants` (an internally tagged enum's `oneOf`, tagged by
/// `tag`) with `common` fields added to each variant. Each variant becomes
/// the named schema `<PascalCaseTag><suffix>`, pushed to `named`.
pub(crate) fn tagged_union(
    variants: RefOr<Schema>,
    common: &Object,
    tag: &str,
    suffix: &str,
    named: &mut Named,
) -> RefOr<Schema> {
    let RefOr::T(Schema::OneOf(one_of)) = variants else {
        unreachable!("an internally tagged enum derives a oneOf schema")
    };
    let mut discriminator = Discriminator::new(tag);
    let mut union = OneOfBuilder::new();
    for item in one_of.items {
        let RefOr::T(Schema::Object(variant)) = item else {
            unreachable!("every variant of a tagged enum is an object")
        };
        let tag_value = variant
            .properties
            .get(tag)
            .and_then(|p| match p {
                RefOr::T(Schema::Object(o)) => o.enum_values.as_ref()?.first()?.as_str(),
                _ => None,
            })
            .unwrap_or_else(|| unreachable!("every variant names its tag"))
            .to_owned();
        let name = format!("{}{suffix}", pascal_case(&tag_value));
        let mut object = common.clone();
        object.title = Some(name.clone());
        object.description = variant.description.clone();
        for (key, schema) in variant.properties {
            object.properties.insert(key, schema);
        }
        for key in variant.required {
            if !object.required.contains(&key) {
                object.required.push(key);
            }
        }
        discriminator
            .mapping
            .insert(tag_value, format!("#/components/schemas/{name}"));
        named.push((name.clone(), RefOr::T(Schema::Object(object))));
        union = union.item(Ref::from_schema_name(name));
    }
    RefOr::T(Schema::OneOf(
        union.discriminator(Some(discriminator)).build(),
    ))
}

/// An object schema with these fields, all required.
pub(crate) fn required_fields(fields: &[(&str, RefOr<Schema>, &str)]) -> Object {
    let mut object = ObjectBuilder::new().schema_type(SchemaType::Type(Type::Object));
    for (name, schema, description) in fields {
        let schema = match schema.clone() {
            RefOr::Ref(mut r) => {
                r.description = (*description).to_owned();
                RefOr::Ref(r)
            }
            RefOr::T(Schema::Object(o)) => {
                let mut o = o;
                o.description = Some((*description).to_owned());
                RefOr::T(Schema::Object(o))
            }
            other => other,
        };
        object = object.property(*name, schema).required(*name);
    }
    object.build()
}

fn pascal_case(snake: &str) -> String {
    snake
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}
