"""Models of our own on top of the third-party apps, as a site would have them."""

from __future__ import annotations

import uuid

import reversion
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from modelcluster.contrib.taggit import ClusterTaggableManager
from modelcluster.fields import ParentalKey, ParentalManyToManyField
from mptt.fields import TreeForeignKey, TreeManyToManyField
from mptt.models import MPTTModel
from taggit.models import TaggedItemBase
from wagtail import blocks
from wagtail.fields import RichTextField, StreamField
from wagtail.images.blocks import ImageChooserBlock
from wagtail.models import Page
from wagtail.search import index


class Category(MPTTModel):
    """A nested-set tree: lft, rght, tree_id and level are kept by django-mptt."""

    name = models.CharField(max_length=100)
    parent = TreeForeignKey(
        "self", null=True, blank=True, related_name="children", on_delete=models.CASCADE
    )
    attributes = models.JSONField(default=dict, blank=True)

    class MPTTMeta:
        order_insertion_by = ["name"]

    def __str__(self):
        return self.name


class ArticlePageTag(TaggedItemBase):
    content_object = ParentalKey(
        "ArticlePage", related_name="tagged_items", on_delete=models.CASCADE
    )


class ArticlePage(Page):
    """A Wagtail page type: a child table of wagtailcore_page, indexed for search."""

    intro = RichTextField(blank=True)
    body = StreamField(
        [
            ("heading", blocks.CharBlock()),
            ("paragraph", blocks.RichTextBlock()),
            ("image", ImageChooserBlock()),
            (
                "quote",
                blocks.StructBlock(
                    [("text", blocks.TextBlock()), ("author", blocks.CharBlock())]
                ),
            ),
        ],
        blank=True,
    )
    published = models.DateField(null=True, blank=True)
    reading_time = models.TimeField(null=True, blank=True)
    uid = models.UUIDField(default=uuid.uuid4, unique=True)
    categories = ParentalManyToManyField(Category, blank=True)
    tags = ClusterTaggableManager(through=ArticlePageTag, blank=True)

    search_fields = [
        *Page.search_fields,
        index.SearchField("intro"),
        index.SearchField("body"),
    ]


@reversion.register()
class Note(models.Model):
    """Versioned by django-reversion, tagged with a tree many-to-many, pointing anywhere."""

    title = models.CharField(max_length=200)
    text = models.TextField(blank=True)
    topics = TreeManyToManyField(Category, blank=True)
    content_type = models.ForeignKey(
        ContentType, null=True, blank=True, on_delete=models.CASCADE
    )
    object_id = models.CharField(max_length=64, blank=True)
    subject = GenericForeignKey("content_type", "object_id")

    def __str__(self):
        return self.title
