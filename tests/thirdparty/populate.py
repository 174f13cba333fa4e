"""Fill the third-party apps' tables: real content through their APIs, then baker.

Two passes:

1. ``populate_content`` writes what a site would hold, through the apps' own APIs,
   because some tables are only filled that way: Wagtail pages added to the
   treebeard tree, saved as revisions and published (revisions, log entries, the
   reference index), indexed for search (on SQLite the index entries' triggers fill
   the FTS5 table), tagged images and documents, django-mptt categories, and
   django-reversion revisions of notes.
2. ``populate_generic`` makes rows with model_bakery for every concrete model of those
   apps, from the app registry, with every optional field filled. Tree nodes are
   added under a real parent (treebeard computes their paths), foreign keys to tree
   models point at existing nodes, and custom fields get generators registered here.
"""

from __future__ import annotations

import datetime
import random
import uuid
from collections.abc import Iterable

from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import DatabaseError, models, transaction
from model_bakery import baker, random_gen
from model_bakery import generators as baker_generators

# Rows baker makes for each model (tree nodes and their kin included).
ROWS_PER_MODEL = 3
# Tries per row: random values sometimes collide with a unique constraint.
TRIES_PER_ROW = 5


def thirdparty_app_names() -> list[str]:
    """Return the names of the installed third-party apps and of tpapp."""
    names = [
        app
        for package, package_apps in settings.THIRDPARTY_APPS.items()
        if package not in settings.THIRDPARTY_MISSING
        for app in package_apps
    ]
    if "tests.thirdparty.tpapp" in settings.INSTALLED_APPS:
        names.append("tests.thirdparty.tpapp")
    return names


def thirdparty_models() -> list[type[models.Model]]:
    """Return every model with a table of its own in those apps, in registry order."""
    names = set(thirdparty_app_names())
    return [
        model
        for model in apps.get_models(include_auto_created=True)
        if model._meta.app_config.name in names
        and model._meta.managed
        and not model._meta.proxy
        and not model._meta.swapped
    ]


def _streamfield_value() -> list:
    """A StreamField value baker can store: the blocks that need no other row."""
    return [
        {
            "type": "heading",
            "value": random_gen.gen_string(30),
            "id": str(uuid.uuid4()),
        },
        {
            "type": "quote",
            "value": {
                "text": random_gen.gen_string(200),
                "author": random_gen.gen_string(20),
            },
            "id": str(uuid.uuid4()),
        },
    ]


def _time() -> datetime.time:
    """A time of day with microseconds, drawn from baker's seeded random.

    baker's own date and time generators start from the clock, so two runs would
    store different values; one in four has trailing zeros in its microseconds,
    which a lossless backup must keep too.
    """
    chance = random_gen.baker_random
    microsecond = chance.randrange(1_000_000)
    if chance.random() < 0.25:
        microsecond -= microsecond % 1000
    return datetime.time(
        chance.randrange(24), chance.randrange(60), chance.randrange(60), microsecond
    )


def _date() -> datetime.date:
    chance = random_gen.baker_random
    return datetime.date(1970, 1, 1) + datetime.timedelta(days=chance.randrange(40_000))


def _datetime() -> datetime.datetime:
    return datetime.datetime.combine(_date(), _time(), tzinfo=datetime.UTC)


def _search_vector():
    """A PostgreSQL tsvector, as Wagtail's search index stores in its entries."""
    from django.contrib.postgres.search import SearchVector

    words = " ".join(random_gen.gen_string(8) for _ in range(5))
    return SearchVector(models.Value(words, output_field=models.TextField()))


def _related_row(model, _using="", _create_files=False, **attrs):
    """Make the row a foreign key points at; a tree node is taken from the tree.

    A treebeard node made on its own would have a made-up path, and a Wagtail page
    validates its place in the tree when saved.
    """
    if _is_tree_model(model):
        node = _existing(model)
        if node is not None:
            return node
    return random_gen.gen_related(
        model, _using=_using, _create_files=_create_files, **attrs
    )


_related_row.required = random_gen.gen_related.required
_related_row.prepare = random_gen.gen_related.prepare


def _register_generators() -> None:
    """Teach baker the custom fields these apps define."""
    related = _related_row
    many = "model_bakery.random_gen.gen_m2m"
    for path, generator in {
        "django.db.models.ForeignKey": related,
        "django.db.models.OneToOneField": related,
        "modelcluster.fields.ParentalKey": related,
        "mptt.fields.TreeForeignKey": related,
        "mptt.fields.TreeOneToOneField": related,
        "mptt.fields.TreeManyToManyField": many,
        "modelcluster.fields.ParentalManyToManyField": many,
        "django.db.models.DateField": _date,
        "django.db.models.DateTimeField": _datetime,
        "django.db.models.TimeField": _time,
        "wagtail.fields.StreamField": _streamfield_value,
        "django.contrib.postgres.search.SearchVectorField": _search_vector,
    }.items():
        if path.split(".")[0] in settings.THIRDPARTY_MISSING:
            continue
        baker_generators.add(path, generator)
    # Other custom fields (RichTextField, taggit's and colorfield's fields...) store
    # what a built-in field they subclass stores: use that field's generator.
    known = baker_generators.get_type_mapping()
    for model in thirdparty_models():
        for field in model._meta.get_fields():
            field_type = type(field)
            if field_type in known or baker_generators.get(field_type):
                continue
            base = next((cls for cls in field_type.__mro__ if cls in known), None)
            if base is not None:
                baker_generators.user_mapping[field_type] = known[base]


def _is_tree_model(model: type[models.Model]) -> bool:
    """Tell treebeard nodes, whose paths only the tree API computes."""
    from treebeard.mp_tree import MP_Node

    return issubclass(model, MP_Node)


def _optional_fields(model: type[models.Model]) -> list[str]:
    """Return the optional fields baker should fill on ``model``.

    Tag managers are left out: baker cannot assign them, and the tagged-item tables
    get rows of their own from baker and from the content pass.
    """
    from taggit.managers import TaggableManager

    names = []
    for field in model._meta.get_fields():
        if field.auto_created or not field.concrete and not field.many_to_many:
            continue
        if isinstance(field, TaggableManager):
            continue
        names.append(field.name)
    return names


def _existing(model: type[models.Model]) -> models.Model | None:
    """Return a row of ``model`` picked by baker's seeded random, or None."""
    pks = list(model._base_manager.order_by("pk").values_list("pk", flat=True))
    if not pks:
        return None
    return model._base_manager.get(pk=random_gen.baker_random.choice(pks))


def _tree_references(model: type[models.Model]) -> dict:
    """Point each foreign key to a treebeard model at an existing node."""
    values = {}
    for field in model._meta.concrete_fields:
        if (
            field.many_to_one
            and not field.one_to_one
            and _is_tree_model(field.related_model)
        ):
            node = _existing(field.related_model)
            if node is not None:
                values[field.name] = node
    return values


# Field values these apps validate on save (a log action must be registered).
OVERRIDES = {
    "wagtailcore.ModelLogEntry": {"action": "wagtail.edit"},
    "wagtailcore.PageLogEntry": {"action": "wagtail.edit"},
}


def _make_one(model: type[models.Model]) -> None:
    values = {**OVERRIDES.get(model._meta.label, {}), **_tree_references(model)}
    if _is_tree_model(model):
        node = baker.prepare(
            model,
            _save_related=True,
            _fill_optional=_optional_fields(model),
            **values,
        )
        from wagtail.models import Locale, Page

        if isinstance(node, Page):
            # Wagtail reads the page's type from its content type and validates
            # its locale when it saves it.
            node.content_type = ContentType.objects.get_for_model(model)
            node.locale = Locale.objects.get(language_code="en")
        parent = _existing(model) or model.get_first_root_node()
        parent.add_child(instance=node)
        return
    baker.make(
        model,
        _fill_optional=_optional_fields(model),
        _create_files=False,
        **values,
    )


def populate_generic(
    models_to_fill: Iterable[type[models.Model]] | None = None,
    rows: int = ROWS_PER_MODEL,
) -> dict[str, int]:
    """Make ``rows`` rows per model with baker; return the rows made per label."""
    _register_generators()
    made = {}
    for model in models_to_fill or thirdparty_models():
        count = 0
        errors = []
        for _ in range(rows):
            for _try in range(TRIES_PER_ROW):
                try:
                    with transaction.atomic():
                        _make_one(model)
                except DatabaseError as exc:
                    errors.append(exc)
                    continue
                count += 1
                break
        if count == 0:
            raise AssertionError(
                f"baker made no {model._meta.label} row: {errors[-1]!r}"
            )
        made[model._meta.label] = count
    return made


def populate_content() -> None:
    """Write a small site through the apps' own APIs."""
    import reversion
    from wagtail.documents.models import Document
    from wagtail.images.models import Image
    from wagtail.models import Collection, Locale, Page
    from wagtail.rich_text import RichText
    from wagtail.search.index import insert_or_update_object

    from tests.thirdparty.tpapp.models import ArticlePage, Category, Note

    user = get_user_model().objects.create_superuser(
        "editor", "editor@example.com", "x"
    )
    root_collection = Collection.get_first_root_node()
    photos = root_collection.add_child(name="Photos")
    archive = photos.add_child(name="Archive 2026")

    world = Category.objects.create(name="World", attributes={"z": 1, "a": [1, 2]})
    europe = Category.objects.create(name="Europe", parent=world)
    Category.objects.create(name="Alps", parent=europe, attributes={"b": None, "a": ""})
    Category.objects.create(name="Asia", parent=world)

    images = []
    for number, collection in enumerate([photos, archive, root_collection]):
        image = Image.objects.create(
            title=f"Sunset {number}",
            file=f"original_images/sunset-{number}.jpg",
            width=640 + number,
            height=480,
            collection=collection,
            uploaded_by_user=user,
        )
        image.tags.add("sunset", f"photo-{number}")
        images.append(image)
        insert_or_update_object(image)
    document = Document.objects.create(
        title="Annual report", file="documents/report.pdf", collection=archive
    )
    document.tags.add("report")
    insert_or_update_object(document)

    locale = Locale.objects.get(language_code="en")
    home = Page.objects.get(depth=2, slug="home")
    parent = home
    for number in range(6):
        page = ArticlePage(
            title=f"Article {number}: Ünïcode & <html>",
            slug=f"article-{number}",
            locale=locale,
            intro=f"<p>Intro <b>{number}</b></p>",
            body=[
                ("heading", f"Heading {number}"),
                ("paragraph", RichText(f"<p>Paragraph {number}</p>")),
                ("image", images[number % len(images)]),
                ("quote", {"text": "Less is more.", "author": "Mies"}),
            ],
            published=datetime.date(2026, 1, 1 + number),
            # Microseconds: none, all six digits, and trailing zeros.
            reading_time=datetime.time(0, number, 30, [0, 123456, 120000][number % 3]),
            owner=user,
        )
        page.tags.add("news", f"topic-{number % 3}")
        page.categories = [world, europe] if number % 2 else [europe]
        parent.add_child(instance=page)
        revision = page.save_revision(user=user, log_action=True)
        revision.publish(user=user)
        page.refresh_from_db()
        insert_or_update_object(page)
        # Every other page nests under the one before: a deeper tree.
        if number % 2 == 0:
            parent = page

    page_type = ContentType.objects.get_for_model(ArticlePage)
    for number in range(3):
        with reversion.create_revision():
            note = Note.objects.create(
                title=f"Note {number}",
                text="first",
                content_type=page_type,
                object_id=str(ArticlePage.objects.order_by("pk")[number].pk),
            )
            note.topics.set([world, europe][: number + 1])
            reversion.set_user(user)
            reversion.set_comment("created")
        with reversion.create_revision():
            note.text = "second"
            note.save()
            reversion.set_comment("edited")


def random_seed(seed: int) -> None:
    """Make baker's values, and the rows picked for tree references, repeatable."""
    baker.seed(seed)
    random.seed(seed)


def mutate() -> None:
    """Change the site as editors and scripts would: through the ORM and raw SQL."""
    import reversion
    from django.db import connection
    from taggit.models import Tag
    from wagtail.images.models import Image
    from wagtail.models import Page
    from wagtail.search.index import insert_or_update_object, remove_object

    from tests.thirdparty.tpapp.models import ArticlePage, Category, Note

    # Through the apps: a page deleted (its parent's numchild changes), one added and
    # published, a category moved in the nested set, a note revised, an image
    # renamed and reindexed (on SQLite a trigger updates the FTS table), a tag gone.
    doomed = ArticlePage.objects.order_by("-pk").first()
    remove_object(doomed)
    doomed.delete()
    home = Page.objects.get(depth=2, slug="home")
    page = ArticlePage(
        title="Late news",
        slug="late-news",
        body=[("heading", "Breaking")],
        reading_time=datetime.time(23, 59, 59, 999999),
    )
    home.add_child(instance=page)
    page.save_revision().publish()
    insert_or_update_object(page)
    Category.objects.get(name="Asia").move_to(
        Category.objects.get(name="Europe"), "first-child"
    )
    with reversion.create_revision():
        note = Note.objects.order_by("pk").first()
        note.text = "third"
        note.save()
    image = Image.objects.order_by("pk").first()
    image.title = "Renamed sunset"
    image.save()
    insert_or_update_object(image)
    Tag.objects.filter(name="sunset").delete()

    # Behind the ORM's back.
    quote = connection.ops.quote_name
    json_param = "CAST(%s AS jsonb)" if connection.vendor == "postgresql" else "%s"
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {quote('wagtailcore_page')} SET {quote('title')} = %s"
            f" WHERE {quote('id')} = %s",
            ["Retitled behind the ORM", Page.objects.get(depth=2, slug="home").pk],
        )
        cursor.execute(
            f"DELETE FROM {quote('wagtailsearch_indexentry')} WHERE {quote('id')} = %s",
            [page_index_entry_id()],
        )
        cursor.execute(
            f"INSERT INTO {quote('taggit_tag')} ({quote('name')}, {quote('slug')})"
            " VALUES (%s, %s)",
            ["raw tag", "raw-tag"],
        )
        cursor.execute(
            f"UPDATE {quote('tpapp_category')} SET {quote('attributes')} = {json_param}"
            f" WHERE {quote('name')} = %s",
            ['{"z": 3, "a": [true, 1.5]}', "World"],
        )


def page_index_entry_id() -> int:
    """Return the id of the oldest search index entry."""
    from wagtail.search.models import IndexEntry

    return IndexEntry.objects.order_by("pk").values_list("pk", flat=True)[0]
